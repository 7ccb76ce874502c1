import { AsyncLocalStorage } from 'node:async_hooks';

/**
 * A build's log when steps run side by side (a plan's `parallel`): the lines of each branch come out
 * in plan order — the first branch's as they are said, each later one's held until every branch
 * before it has ended — so a log reads the same whichever branch finishes first (the smoke test's
 * answer before the packing's lines). Which branch a line comes from is the async context it is
 * said in (AsyncLocalStorage), so steps keep one `say`.
 */
export interface BranchLog {
  /** Writes a line, or holds it when it is said inside a branch whose turn has not come. */
  say(line: string): Promise<void>;
  /** Runs the branches side by side (as Promise.allSettled), their lines in order; nests. */
  allSettled<T>(branches: readonly (() => Promise<T>)[]): Promise<PromiseSettledResult<T>[]>;
}

interface Branch {
  group: Group;
  index: number;
}

/** One `allSettled` call: which branch writes now, what the others hold, where lines go. */
class Group {
  private live = 0;
  private flushing = false;
  private readonly ended: boolean[];
  private readonly held: string[][];

  constructor(
    size: number,
    private readonly out: (line: string) => Promise<void>,
  ) {
    this.ended = Array.from({ length: size }, () => false);
    this.held = Array.from({ length: size }, () => []);
  }

  say(index: number, line: string): Promise<void> {
    // A branch whose turn has passed (a callback it left behind says something later) is written at once: never held for good.
    if (index < this.live || (index === this.live && !this.flushing)) return this.out(line);
    this.held[index]!.push(line);
    return Promise.resolve();
  }

  /** Branch `index` ended: the turn passes on, each next branch's held lines written first. */
  async end(index: number): Promise<void> {
    this.ended[index] = true;
    if (index !== this.live || this.flushing) return;
    this.flushing = true;
    try {
      while (this.live < this.ended.length && this.ended[this.live]) {
        this.live++;
        const held = this.held[this.live];
        // Lines the branch says while these are written join the queue, after them.
        for (let line = held?.shift(); line !== undefined; line = held?.shift()) await this.out(line);
      }
    } finally {
      this.flushing = false;
    }
  }
}

export function branchLog(write: (line: string) => Promise<void>): BranchLog {
  const current = new AsyncLocalStorage<Branch | undefined>();
  const say = (line: string): Promise<void> => {
    const b = current.getStore();
    return b ? b.group.say(b.index, line) : write(line);
  };
  return {
    say,
    async allSettled(branches) {
      const parent = current.getStore();
      // Lines a branch lets out go where lines of the context around this call go.
      const group = new Group(branches.length, (line) => current.run(parent, () => say(line)));
      return Promise.allSettled(
        branches.map((run, index) =>
          current.run({ group, index }, async () => {
            try {
              return await run();
            } finally {
              await group.end(index);
            }
          }),
        ),
      );
    },
  };
}
