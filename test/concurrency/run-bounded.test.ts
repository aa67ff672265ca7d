import { runBounded } from '../../src/concurrency/run-bounded';

const tick = () => new Promise<void>((resolve) => setImmediate(resolve));

describe('runBounded', () => {
  it('never has more than `limit` tasks in flight and runs every task once', async () => {
    let inFlight = 0;
    let peak = 0;
    const ran: number[] = [];
    const tasks = Array.from({ length: 20 }, (_, i) => async () => {
      inFlight += 1;
      peak = Math.max(peak, inFlight);
      for (let t = 0; t < (i % 3) + 1; t++) await tick();
      ran.push(i);
      inFlight -= 1;
    });
    await runBounded(tasks, 3);
    expect(peak).toBe(3);
    expect(ran.sort((a, b) => a - b)).toEqual(Array.from({ length: 20 }, (_, i) => i));
  });

  it('rejects with the first failure after the tasks in flight settle, and starts none after it', async () => {
    const started: number[] = [];
    const settled: number[] = [];
    const tasks = Array.from({ length: 10 }, (_, i) => async () => {
      started.push(i);
      await tick();
      if (i === 1) throw new Error('task 1 failed');
      if (i === 2) throw new Error('task 2 failed too');
      await tick();
      settled.push(i);
    });
    await expect(runBounded(tasks, 3)).rejects.toThrow('task 1 failed');
    // Tasks 0-2 were in flight when 1 failed; 0 finished its work, nothing after them began.
    expect(started).toEqual([0, 1, 2]);
    expect(settled).toEqual([0]);
  });

  it('runs nothing and resolves for no tasks', async () => {
    await expect(runBounded([], 4)).resolves.toBeUndefined();
  });
});
