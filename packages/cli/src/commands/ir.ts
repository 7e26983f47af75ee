import {
  defaultRegistry,
  demandTable,
  type Graph,
  IrError,
  IrErrorCode,
  PARSE_LIMITS,
  PassManager,
  type PassName,
  parseGraph,
  printGraph,
} from '@stitch/ir';
import type { Command } from 'commander';
import { InputTooLarge, readInputText } from '../input-file.js';

interface IrOpts {
  strict?: boolean;
  json?: boolean;
  tp?: string;
  ep?: string;
  layerGroups?: string;
}

function readInput(file: string): string {
  try {
    return readInputText(file, PARSE_LIMITS.maxInputBytes, 'graph');
  } catch (e) {
    if (e instanceof InputTooLarge) throw e;
    const reason = (e as { code?: string }).code ?? 'unreadable';
    throw new IrError(
      IrErrorCode.Parse,
      [{ message: `cannot read the file (${reason}); check the path` }],
      file,
    );
  }
}

function positiveInt(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) {
    throw new IrError(
      IrErrorCode.Pass,
      [{ message: `--${name} must be a positive integer, found '${value}'` }],
      'stitch ir',
    );
  }
  return n;
}

/** Parses FILE, runs `passes` (verifying before and after each), and hands the result to `emit`. */
function runIr(file: string, opts: IrOpts, passes: PassName[], emit: (g: Graph) => string): void {
  const name = file === '-' ? '<stdin>' : file;
  try {
    const graph = parseGraph(readInput(file), name);
    // fmt only re-prints (syntax errors still fail); every other command verifies before and after each pass.
    const verifyEach = passes.length > 0;
    const pm = new PassManager({ registry: defaultRegistry(), strict: opts.strict ?? false, verifyEach });
    const passOpts = {
      tp: positiveInt('tp', opts.tp),
      ep: positiveInt('ep', opts.ep),
      layerGroups: positiveInt('layer-groups', opts.layerGroups),
    };
    const clean = Object.fromEntries(Object.entries(passOpts).filter(([, v]) => v !== undefined));
    for (const p of passes) pm.add(p, clean);
    process.stdout.write(emit(pm.run(graph)));
  } catch (e) {
    if (!(e instanceof IrError)) throw e;
    // The diagnostics already read `file:line:col: error: …`; print them as they are.
    process.stderr.write(`${e.file === '<input>' ? e.withFile(name).message : e.message}\n`);
    process.exitCode = e.exitCode;
  }
}

export function registerIr(program: Command): void {
  const ir = program
    .command('ir')
    .description('Read, check and transform agent graphs in MLIR generic syntax');
  const withCommon = (cmd: Command) =>
    cmd.argument('<file>', "IR file, or '-' for stdin").option('--strict', 'reject ops no dialect registers');
  const withSplit = (cmd: Command) =>
    cmd
      .option('--tp <n>', 'tensor-parallel degree for llm prefill')
      .option('--ep <n>', 'expert-parallel split for llm prefill')
      .option('--layer-groups <n>', 'layer groups a sharded prefill is cut into (default 4)');

  withCommon(ir.command('fmt').description('Parse and print in canonical form')).action(
    (file: string, opts: IrOpts) => runIr(file, opts, [], printGraph),
  );
  withCommon(
    ir.command('verify').description('Check types, attributes, loop bounds (exit 2 on errors)'),
  ).action((file: string, opts: IrOpts) =>
    runIr(
      file,
      opts,
      ['verify'],
      (g) => `${file === '-' ? '<stdin>' : file}: ok, ${g.ops.length} top-level op(s)\n`,
    ),
  );
  withSplit(
    withCommon(
      ir
        .command('decompose')
        .description('Split llm.call into tokenize → prefill → kv.transfer → decode → detokenize'),
    ),
  ).action((file: string, opts: IrOpts) => runIr(file, opts, ['decompose'], printGraph));
  withSplit(
    withCommon(
      ir
        .command('annotate')
        .description('Unroll loops, decompose, and attach per-op demand (FLOPs, bytes, memory, network)'),
    ),
  )
    .option('--json', 'print the demand table as JSON instead of IR')
    .action((file: string, opts: IrOpts) =>
      runIr(file, opts, ['unroll-loops', 'decompose', 'annotate-demand'], (g) =>
        opts.json ? `${JSON.stringify(demandTable(g), null, 2)}\n` : printGraph(g),
      ),
    );
}
