/**
 * BENCH_CPU_PROF=<dir>: V8 CPU profiles of a bench's measured sections, taken in-process through
 * the inspector (a `--cpu-prof` profile of the whole process is dominated by module loading and by
 * code not yet optimised). Used by bench/throughput.ts for the producer and by
 * bench/throughput-worker.ts for each worker.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { join } from 'node:path';

/**
 * Starts profiling this process when BENCH_CPU_PROF is set; the function returned stops and writes
 * `<dir>/<name>.cpuprofile`, creating `<dir>` if needed (and does nothing when it is not set).
 */
export async function startCpuProfile(name: string): Promise<() => Promise<void>> {
  const dir = process.env.BENCH_CPU_PROF;
  if (!dir) return () => Promise.resolve();
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.setSamplingInterval', { interval: 200 });
  await session.post('Profiler.start');
  return async () => {
    const { profile } = await session.post('Profiler.stop');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, `${name}.cpuprofile`), JSON.stringify(profile));
    session.disconnect();
  };
}
