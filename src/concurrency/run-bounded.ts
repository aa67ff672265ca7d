/**
 * Runs tasks with at most `limit` in flight; the first failure rejects after in-flight tasks settle, and
 * no task starts after it. Used by services (folder import) and workers (loading a training snapshot):
 * it knows nothing of either.
 */
export async function runBounded(tasks: Array<() => Promise<void>>, limit: number): Promise<void> {
  let next = 0;
  let failure: unknown = null;
  const lane = async () => {
    while (failure === null && next < tasks.length) {
      const task = tasks[next++];
      try {
        await task();
      } catch (error) {
        failure ??= error;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, tasks.length) }, lane));
  if (failure !== null) throw failure;
}
