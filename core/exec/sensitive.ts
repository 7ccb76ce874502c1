/**
 * A secret carried through commands and logs. It prints as `[REDACTED]` everywhere (String(),
 * JSON, util.inspect); only an executor asks for the real value, with `reveal()`.
 */
export class Sensitive {
  readonly #value: string;

  constructor(value: string) {
    this.#value = value;
  }

  reveal(): string {
    return this.#value;
  }

  toString(): string {
    return REDACTED;
  }

  toJSON(): string {
    return REDACTED;
  }

  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return REDACTED;
  }
}

export const REDACTED = '[REDACTED]';

export function sensitive(value: string): Sensitive {
  return new Sensitive(value);
}

export type Arg = string | Sensitive;

export function revealArg(a: Arg): string {
  return typeof a === 'string' ? a : a.reveal();
}
