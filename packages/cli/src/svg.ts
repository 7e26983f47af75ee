/**
 * The small SVG writer behind stitch's charts (`stitch tco --chart`, `stitch tco --sweep --chart`,
 * `pnpm bench fleets --chart`): elements in the order drawn, text escaped, coordinates rounded to
 * 0.01 so files stay small and stable across runs.
 */

export interface TextStyle {
  /** Font size in px. @default 10 */
  size?: number;
  anchor?: 'start' | 'middle' | 'end';
  fill?: string;
  /** Degrees, about the text's own anchor point. */
  rotate?: number;
}

const ENTITIES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&apos;',
};

export function escapeXml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ENTITIES[c]!);
}

/** A coordinate as text; a non-finite one is a bug in the chart code, so it throws. */
function n(v: number, what: string): string {
  if (!Number.isFinite(v)) throw new RangeError(`svg: ${what} is ${v}`);
  return String(Math.round(v * 100) / 100);
}

export class Svg {
  private readonly parts: string[] = [];
  /** The chart's accessible name: its first text (the heading) unless `title` was called. */
  private name: string | undefined;

  constructor(
    readonly width: number,
    readonly height: number,
    private readonly fontFamily = 'sans-serif',
  ) {}

  text(x: number, y: number, content: string, style: TextStyle = {}): this {
    const attrs = [
      `x="${n(x, 'text x')}"`,
      `y="${n(y, 'text y')}"`,
      `font-size="${n(style.size ?? 10, 'size')}"`,
    ];
    if (style.anchor && style.anchor !== 'start') attrs.push(`text-anchor="${style.anchor}"`);
    if (style.fill) attrs.push(`fill="${escapeXml(style.fill)}"`);
    if (style.rotate)
      attrs.push(`transform="rotate(${n(style.rotate, 'rotate')} ${n(x, 'x')} ${n(y, 'y')})"`);
    this.parts.push(`<text ${attrs.join(' ')}>${escapeXml(content)}</text>`);
    this.name ??= content;
    return this;
  }

  /** Names the chart (its `<title>`, what screen readers announce). */
  title(name: string): this {
    this.name = name;
    return this;
  }

  /** A rectangle; a negative width or height extends left or up from (x, y). */
  rect(x: number, y: number, w: number, h: number, fill: string): this {
    const [x0, w0] = w < 0 ? [x + w, -w] : [x, w];
    const [y0, h0] = h < 0 ? [y + h, -h] : [y, h];
    this.parts.push(
      `<rect x="${n(x0, 'rect x')}" y="${n(y0, 'rect y')}" width="${n(w0, 'width')}" height="${n(h0, 'height')}" fill="${escapeXml(fill)}"/>`,
    );
    return this;
  }

  line(x1: number, y1: number, x2: number, y2: number, stroke = '#444', dash?: string): this {
    const d = dash ? ` stroke-dasharray="${escapeXml(dash)}"` : '';
    this.parts.push(
      `<line x1="${n(x1, 'x1')}" y1="${n(y1, 'y1')}" x2="${n(x2, 'x2')}" y2="${n(y2, 'y2')}" stroke="${escapeXml(stroke)}"${d}/>`,
    );
    return this;
  }

  toString(): string {
    const head = `<svg xmlns="http://www.w3.org/2000/svg" width="${n(this.width, 'width')}" height="${n(this.height, 'height')}" font-family="${escapeXml(this.fontFamily)}">`;
    const title = `<title>${escapeXml(this.name ?? 'chart')}</title>`;
    return `${[head, title, ...this.parts, '</svg>'].join('\n')}\n`;
  }
}
