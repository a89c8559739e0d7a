// checkNumerics: finds the first op whose output holds NaN or ±Inf, as PyTorch's detect_anomaly
// and TensorFlow.js's debug mode do. While on, every f32 tensor an op returns (through record())
// is scanned on the GPU by kernels/numerics.wgsl into a flag slot of its own; at the next wait
// for the GPU (a read or sync) the flags are read back and the first marked op throws, named
// with its input shapes and the stack of its call (for a gradient: its forward call). Off (the
// default), the tape's probe is unset and nothing runs.
import type { Gpu } from '../gpu/context.ts';
import { attachMonitor } from '../gpu/monitor.ts';
import { packParams, grid } from '../gpu/params.ts';
import { shapeString, type Tensor } from './tensor.ts';
import { currentSite, noteKernel, watchSites, type OpSite } from './site.ts';

const WG = 256;
/** Flag slots per flag buffer; another buffer is added when they run out before a wait. */
const SLOTS = 4096;

/** Thrown at the first wait after an op produced NaN or ±Inf while checkNumerics was on. */
export class NumericsError extends Error {
  override name = 'NumericsError';
  constructor(
    message: string,
    /** The op, its caller and stack. */
    readonly site: OpSite,
    readonly inputShapes: readonly (readonly number[])[],
    readonly outputShape: readonly number[],
  ) {
    super(message);
  }
}

interface Checked {
  site: OpSite;
  inputShapes: (readonly number[])[];
  outputShape: readonly number[];
}

class NumericsChecker {
  private readonly flagBuffers: GPUBuffer[] = [];
  private checked: Checked[] = [];
  private readonly stopSites: () => void;
  private readonly detach: () => void;

  constructor(private readonly gpu: Gpu) {
    this.stopSites = watchSites((out, inputs) => this.scan(out, inputs));
    this.detach = attachMonitor(gpu, {
      beforeDispatch: () => undefined,
      afterDispatch: (d) => noteKernel(d.kernel),
      submitted: () => {},
      waited: () => {},
      beforeWait: () => this.verify(),
    });
  }

  stop(): void {
    this.stopSites();
    this.detach();
    for (const b of this.flagBuffers) b.destroy();
  }

  private scan(out: Tensor, inputs: readonly Tensor[]): void {
    // A captured step records its work for replay; its checks would outlive their sites.
    if (out.dtype !== 'f32' || out.size === 0 || out.disposed || out.gpu !== this.gpu || this.gpu.allocator !== this.gpu.pool) return;
    const slot = this.checked.length;
    if (slot % SLOTS === 0 && slot / SLOTS >= this.flagBuffers.length) this.flagBuffers.push(this.newFlags());
    this.checked.push({ site: currentSite(), inputShapes: inputs.map((t) => t.shape), outputShape: out.shape });
    this.gpu.dispatch({
      kernel: 'numerics',
      entry: 'check',
      params: packParams(out.size, slot % SLOTS),
      bindings: [out.binding(), { buffer: this.flagBuffers[Math.floor(slot / SLOTS)]!, size: SLOTS * 4 }],
      workgroups: grid(out.size, WG),
    });
  }

  private newFlags(): GPUBuffer {
    const buffer = this.gpu.device.createBuffer({ size: SLOTS * 4, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST });
    this.gpu.write({ buffer, size: SLOTS * 4 }, new Uint32Array(SLOTS));
    return buffer;
  }

  /** Reads the flags of the ops checked since the last wait; throws for the first marked one. */
  private async verify(): Promise<void> {
    const checked = this.checked;
    if (checked.length === 0) return;
    this.checked = [];
    const used = Math.ceil(checked.length / SLOTS);
    const staging = this.gpu.device.createBuffer({ size: used * SLOTS * 4, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    try {
      for (let b = 0; b < used; b++) {
        this.gpu.copy({ buffer: this.flagBuffers[b]!, size: SLOTS * 4 }, { buffer: staging, offset: b * SLOTS * 4, size: SLOTS * 4 });
        this.gpu.write({ buffer: this.flagBuffers[b]!, size: SLOTS * 4 }, new Uint32Array(SLOTS));
      }
      this.gpu.flush();
      await staging.mapAsync(GPUMapMode.READ);
      const flags = new Uint32Array(staging.getMappedRange().slice(0));
      staging.unmap();
      const first = checked.findIndex((_, i) => flags[i] !== 0);
      if (first >= 0) throw numericsError(checked[first]!);
    } finally {
      staging.destroy();
    }
  }
}

function numericsError({ site, inputShapes, outputShape }: Checked): NumericsError {
  const what = site.backward ? `the gradient of ${site.op.replace(/ \(backward\)$/, '')} (computed in backward)` : site.op;
  const inputs = inputShapes.map(shapeString).join(', ') || 'none';
  const where = site.backward ? 'its forward op was called at' : 'called at';
  return new NumericsError(
    `checkNumerics: ${what} produced NaN or ±Inf in its output ${shapeString(outputShape)} (inputs ${inputs}); ${where} ${site.caller || 'an unknown place'}\n${site.stack}`,
    site,
    inputShapes,
    outputShape,
  );
}

const checkers = new WeakMap<Gpu, NumericsChecker>();

/**
 * Turns checking for NaN and ±Inf after every op on or off (off by default). While on, the first
 * wait for the GPU (read(), sync()) after an op made NaN or ±Inf throws a NumericsError naming
 * that op, its input shapes and where it was called. Costs a scan of every op's output and a
 * stack read per op while on; nothing while off.
 */
export function checkNumerics(gpu: Gpu, on: boolean): void {
  const running = checkers.get(gpu);
  if (on && !running) checkers.set(gpu, new NumericsChecker(gpu));
  if (!on && running) {
    running.stop();
    checkers.delete(gpu);
  }
}
