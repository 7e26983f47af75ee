// Parsers for numeric command-line options: a value that is not what the option takes is refused by
// commander with the option's name, before the command starts anything.
import { InvalidArgumentError } from 'commander';

/** An integer ≥ `min`. */
export const integer = (min: number) => (value: string) => {
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) throw new InvalidArgumentError(`expected an integer ≥ ${min}`);
  return n;
};

/** A finite number ≥ 0. */
export const nonNegative = (value: string) => {
  const n = Number(value);
  if (!(Number.isFinite(n) && n >= 0)) throw new InvalidArgumentError('expected a number ≥ 0');
  return n;
};
