// What the device lets an observer see of its work (the profiler, src/tensor/profile.ts, and
// checkNumerics, src/tensor/numerics.ts): each dispatch as it is encoded, each submit, and each
// wait for the GPU. The device holds one monitor, null while nothing watches: then each hook
// costs it one null check. attachMonitor combines several.
import type { Dispatch, Gpu } from './context.ts';

export interface DispatchMonitor {
  /**
   * Called as a dispatch is about to be encoded, with the workgroups it runs. Returns the
   * timestamp writes of a compute pass of its own for it, or undefined to encode it as usual.
   */
  beforeDispatch(d: Dispatch, workgroups: readonly [number, number, number]): GPUComputePassTimestampWrites | undefined;
  /** Called once the dispatch is encoded. */
  afterDispatch(d: Dispatch): void;
  /** A batch was submitted: host times (performance.now()) around the submit. */
  submitted(start: number, end: number, dispatches: number): void;
  /** The host waited for the GPU (a readback or a sync), from start to end. */
  waited(start: number, end: number, what: 'read' | 'sync', bytes: number): void;
  /** Called before the host waits for the GPU, so a monitor can read back what it keeps first (and throw). */
  beforeWait?(): Promise<void>;
}

const attached = new WeakMap<Gpu, DispatchMonitor[]>();

/** Adds a monitor to the device's; the returned function removes it. */
export function attachMonitor(gpu: Gpu, monitor: DispatchMonitor): () => void {
  const list = attached.get(gpu) ?? [];
  attached.set(gpu, list);
  list.push(monitor);
  gpu.monitor = combined(list);
  return () => {
    const at = list.indexOf(monitor);
    if (at < 0) return;
    list.splice(at, 1);
    gpu.monitor = list.length ? combined(list) : null;
  };
}

function combined(list: readonly DispatchMonitor[]): DispatchMonitor {
  if (list.length === 1) return list[0]!;
  return {
    beforeDispatch: (d, workgroups) => {
      let writes: GPUComputePassTimestampWrites | undefined;
      for (const m of list) writes = m.beforeDispatch(d, workgroups) ?? writes;
      return writes;
    },
    afterDispatch: (d) => list.forEach((m) => m.afterDispatch(d)),
    submitted: (start, end, n) => list.forEach((m) => m.submitted(start, end, n)),
    waited: (start, end, what, bytes) => list.forEach((m) => m.waited(start, end, what, bytes)),
    beforeWait: async () => {
      for (const m of list) await m.beforeWait?.();
    },
  };
}
