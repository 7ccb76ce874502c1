import { describe, expect, it } from 'vitest';
import { deadline } from '../../../../core/exec/deadline.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('deadline', () => {
  it('fires once its time is up and says so afterwards', async () => {
    let calls = 0;
    const d = deadline(20, () => void calls++);
    expect(d.expired()).toBe(false);
    await sleep(60);
    expect(calls).toBe(1);
    expect(d.expired()).toBe(true);
  });

  it('never fires once cleared', async () => {
    let calls = 0;
    const d = deadline(20, () => void calls++);
    d.clear();
    await sleep(60);
    expect(calls).toBe(0);
    expect(d.expired()).toBe(false);
  });

  it('has no limit when given none', async () => {
    let calls = 0;
    const d = deadline(undefined, () => void calls++);
    await sleep(20);
    expect(calls + Number(d.expired())).toBe(0);
  });
});
