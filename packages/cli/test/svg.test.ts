import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { escapeXml, Svg } from '../src/svg.js';

describe('Svg', () => {
  it('writes elements in order with escaped text and rounded coordinates', () => {
    const out = new Svg(100, 50)
      .text(1.234, 2, 'a < b & "c"', { size: 8, anchor: 'end', fill: '#555', rotate: -30 })
      .rect(10, 20, 5.555, 3, '#fff')
      .line(0, 1, 2, 3, '#444', '2,2')
      .toString();
    assert.equal(
      out,
      [
        '<svg xmlns="http://www.w3.org/2000/svg" width="100" height="50" font-family="sans-serif">',
        // The first text (a chart's heading) names it, for screen readers and SVG linters.
        '<title>a &lt; b &amp; &quot;c&quot;</title>',
        '<text x="1.23" y="2" font-size="8" text-anchor="end" fill="#555" transform="rotate(-30 1.23 2)">a &lt; b &amp; &quot;c&quot;</text>',
        '<rect x="10" y="20" width="5.56" height="3" fill="#fff"/>',
        '<line x1="0" y1="1" x2="2" y2="3" stroke="#444" stroke-dasharray="2,2"/>',
        '</svg>',
        '',
      ].join('\n'),
    );
  });

  it('title() names the chart; a chart without text is named "chart"', () => {
    assert.match(new Svg(10, 10).text(0, 0, 'heading').title('Costs').toString(), /<title>Costs<\/title>/);
    assert.match(new Svg(10, 10).rect(0, 0, 1, 1, 'red').toString(), /<title>chart<\/title>/);
  });

  it('a negative width or height extends the rectangle left or up', () => {
    assert.match(
      new Svg(10, 10).rect(8, 8, -3, -2, 'red').toString(),
      /<rect x="5" y="6" width="3" height="2"/,
    );
  });

  it('refuses a non-finite coordinate instead of writing NaN into the file', () => {
    assert.throws(() => new Svg(10, 10).rect(0, Number.NaN, 1, 1, 'red'), RangeError);
    assert.throws(() => new Svg(10, 10).text(Number.POSITIVE_INFINITY, 0, 'x'), RangeError);
  });

  it('escapeXml covers the five XML entities', () => {
    assert.equal(escapeXml(`<&>"'`), '&lt;&amp;&gt;&quot;&apos;');
  });
});
