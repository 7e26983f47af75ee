import { AgentsError, AgentsErrorCode } from './errors.js';

/**
 * Evaluates arithmetic (numbers, + - * / % ^, parentheses, unary minus) by recursive descent: no
 * eval, no identifiers, so a tool argument can never run code.
 */
export function calculate(expression: string): number {
  const p = new Parser(expression);
  const v = p.expr();
  p.skip();
  if (p.pos < expression.length) p.fail(`unexpected "${expression[p.pos]}"`);
  if (!Number.isFinite(v))
    throw new AgentsError(
      AgentsErrorCode.CalcMath,
      `"${expression}" has no finite value (division by zero?)`,
    );
  return v;
}

class Parser {
  pos = 0;
  constructor(readonly src: string) {}

  fail(what: string): never {
    throw new AgentsError(
      AgentsErrorCode.CalcSyntax,
      `calculator: ${what} at column ${this.pos + 1} of "${this.src}"; use numbers, + - * / % ^ and parentheses`,
    );
  }

  skip(): void {
    while (this.pos < this.src.length && /\s/.test(this.src[this.pos]!)) this.pos++;
  }

  eat(ch: string): boolean {
    this.skip();
    if (this.src[this.pos] !== ch) return false;
    this.pos++;
    return true;
  }

  expr(): number {
    let v = this.term();
    for (;;) {
      if (this.eat('+')) v += this.term();
      else if (this.eat('-')) v -= this.term();
      else return v;
    }
  }

  term(): number {
    let v = this.power();
    for (;;) {
      if (this.eat('*')) v *= this.power();
      else if (this.eat('/')) v /= this.power();
      else if (this.eat('%')) v %= this.power();
      else return v;
    }
  }

  /** Right-associative, and binds tighter than unary minus on its left: -2^2 = -4. */
  power(): number {
    if (this.eat('-')) return -this.power();
    if (this.eat('+')) return this.power();
    const base = this.atom();
    return this.eat('^') ? base ** this.power() : base;
  }

  atom(): number {
    if (this.eat('(')) {
      const v = this.expr();
      if (!this.eat(')')) this.fail('missing ")"');
      return v;
    }
    this.skip();
    const m = /^(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?/.exec(this.src.slice(this.pos));
    if (!m) this.fail(this.pos >= this.src.length ? 'expression ends early' : 'expected a number');
    this.pos += m[0].length;
    return Number(m[0]);
  }
}
