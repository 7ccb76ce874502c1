import { describe, expect, it } from 'vitest';
import { branchLog } from '../../../builder/branch-log.ts';

const tick = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('a log of branches side by side', () => {
  it('writes each branch in plan order whichever ends first, lines outside branches as they come', async () => {
    const out: string[] = [];
    const log = branchLog(async (l) => void out.push(l));
    await log.say('before');
    const settled = await log.allSettled([
      async () => {
        await log.say('a1');
        await tick(60);
        await log.say('a2');
        return 'a';
      },
      async () => {
        await log.say('b1');
        await log.say('b2');
        return 'b';
      },
      async () => {
        await tick(20);
        await log.say('c1');
        throw new Error('c failed');
      },
    ]);
    await log.say('after');
    expect(out).toEqual(['before', 'a1', 'a2', 'b1', 'b2', 'c1', 'after']);
    expect(settled.map((s) => s.status)).toEqual(['fulfilled', 'fulfilled', 'rejected']);
  });

  it("streams the first branch as it goes, and a later branch once the ones before it ended; nested branches keep their parent's place", async () => {
    const out: string[] = [];
    const log = branchLog(async (l) => void out.push(l));
    let seenWhileFirstRan: string[] = [];
    await log.allSettled([
      async () => {
        await log.say('a1');
        await tick(30);
        seenWhileFirstRan = [...out];
        await log.say('a2');
      },
      async () => {
        await log.allSettled([
          async () => {
            await tick(10);
            await log.say('b.x');
          },
          async () => void (await log.say('b.y')),
        ]);
        await log.say('b.end');
      },
    ]);
    expect(seenWhileFirstRan).toEqual(['a1']);
    expect(out).toEqual(['a1', 'a2', 'b.x', 'b.y', 'b.end']);
  });

  it('writes what a branch says after its turn has passed (a callback it started), never holding it for good', async () => {
    const out: string[] = [];
    const log = branchLog(async (l) => void out.push(l));
    let late: Promise<void> | undefined;
    await log.allSettled([
      async () => {
        // A timer set inside the branch runs in its context, after the branches have ended.
        late = new Promise((resolve) => setTimeout(() => void log.say('late from a').then(resolve), 60));
      },
      async () => {
        await tick(20);
        await log.say('b1');
      },
    ]);
    await late;
    await log.say('after');
    expect(out).toEqual(['b1', 'late from a', 'after']);
  });
});
