// Reads an OTLP ExportTraceServiceRequest in protobuf into the JSON protocol's shape, for the test
// receiver: only the fields the tests look at (resource and span attributes, ids, name, kind, times,
// status).
// Field numbers from opentelemetry-proto's trace/v1/trace.proto and common/v1/common.proto.

type Fields = Map<number, (number | bigint | Uint8Array)[]>;

/** The message's fields by number: varints as numbers (bigint past 2^53), fixed64 as bigint, bytes as views. */
function fields(buf: Uint8Array): Fields {
  const out: Fields = new Map();
  let at = 0;
  const varint = (): bigint => {
    let v = 0n;
    for (let shift = 0n; ; shift += 7n) {
      if (at >= buf.length) throw new Error('truncated varint');
      const b = buf[at++]!;
      v |= BigInt(b & 0x7f) << shift;
      if ((b & 0x80) === 0) return v;
    }
  };
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  while (at < buf.length) {
    const tag = Number(varint());
    const field = tag >>> 3;
    let value: number | bigint | Uint8Array;
    switch (tag & 7) {
      case 0: {
        const v = varint();
        value = v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
        break;
      }
      case 1:
        value = view.getBigUint64(at, true);
        at += 8;
        break;
      case 2: {
        const n = Number(varint());
        value = buf.subarray(at, at + n);
        at += n;
        break;
      }
      case 5:
        value = view.getUint32(at, true);
        at += 4;
        break;
      default:
        throw new Error(`wire type ${tag & 7} is not in OTLP`);
    }
    out.set(field, [...(out.get(field) ?? []), value]);
  }
  return out;
}

const bytes = (f: Fields, n: number) => (f.get(n)?.[0] as Uint8Array | undefined) ?? new Uint8Array();
const text = (f: Fields, n: number) => new TextDecoder().decode(bytes(f, n));
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const all = (f: Fields, n: number) => (f.get(n) ?? []) as Uint8Array[];

function anyValue(b: Uint8Array): Record<string, unknown> {
  const f = fields(b);
  if (f.has(1)) return { stringValue: text(f, 1) };
  if (f.has(2)) return { boolValue: f.get(2)![0] === 1 };
  if (f.has(3)) return { intValue: String(f.get(3)![0]) };
  if (f.has(4))
    return {
      doubleValue: new DataView(new BigUint64Array([f.get(4)![0] as bigint]).buffer).getFloat64(0, true),
    };
  return {};
}

const attributes = (kvs: Uint8Array[]) =>
  kvs.map((kv) => {
    const f = fields(kv);
    return { key: text(f, 1), value: anyValue(bytes(f, 2)) };
  });

function status(b: Uint8Array): { code: number; message: string } {
  const f = fields(b);
  return { code: (f.get(3)?.[0] as number | undefined) ?? 0, message: text(f, 2) };
}

/** The request as the JSON protocol would spell it (ids in hex, attributes as KeyValue lists). */
export function decodeTraceRequest(body: Uint8Array): { resourceSpans: unknown[] } {
  return {
    resourceSpans: all(fields(body), 1).map((rs) => {
      const r = fields(rs);
      return {
        resource: { attributes: attributes(all(fields(bytes(r, 1)), 1)) },
        scopeSpans: all(r, 2).map((ss) => ({
          spans: all(fields(ss), 2).map((sb) => {
            const s = fields(sb);
            return {
              traceId: hex(bytes(s, 1)),
              spanId: hex(bytes(s, 2)),
              parentSpanId: hex(bytes(s, 4)),
              name: text(s, 5),
              kind: (s.get(6)?.[0] as number | undefined) ?? 0,
              startTimeUnixNano: String(s.get(7)?.[0] ?? 0),
              endTimeUnixNano: String(s.get(8)?.[0] ?? 0),
              attributes: attributes(all(s, 9)),
              status: status(bytes(s, 15)),
            };
          }),
        })),
      };
    }),
  };
}
