import { createInterface } from 'node:readline/promises';
import { XamalError } from '../core/index.ts';
import type { Io } from './io.ts';

/** `question [y/N]` on the terminal (stdin, asked on stderr): yes only for `y` or `yes`. */
export async function terminalConfirm(question: string): Promise<boolean> {
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    return /^y(es)?$/i.test((await rl.question(`${question} [y/N] `)).trim());
  } catch {
    return false; // stdin closed (Ctrl-D): no
  } finally {
    rl.close();
  }
}

/**
 * Kamal's `confirming`: `-y/--confirmed` goes ahead; otherwise the question is asked on the
 * terminal. With no terminal to ask on the command is refused (a script must say -y), and a no
 * stops it with nothing done.
 */
export async function confirmOrStop(io: Io, question: string, confirmed: boolean | undefined, verb: string): Promise<void> {
  if (confirmed) return;
  if (!io.confirm) throw new XamalError('usage', `${verb} asks for confirmation and there is no terminal to ask on: pass -y (--confirmed) to go ahead without asking`);
  if (!(await io.confirm(question))) throw new XamalError('cancelled', `${verb}: not confirmed; nothing was done`);
}
