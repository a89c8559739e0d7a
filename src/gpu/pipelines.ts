// Compute pipelines: each kernel of the registry specialised for the device features in use
// (its //#if blocks, see features.ts) and the op's flags, compiled once per variant, entry
// point and set of override constants, and found again per dispatch without building keys.
import { kernelSource, type KernelName } from './registry.ts';
import { featureFlags, kernelFlags, specialize, type KernelFeature } from './features.ts';
import type { CachedGroup } from './uniforms.ts';

/** A pipeline, its bind group layout, and the bind groups kept for it (see Gpu.dispatch). */
export interface PipelineEntry {
  pipeline: GPUComputePipeline;
  layout: GPUBindGroupLayout;
  groups: Map<string, CachedGroup>;
}

export class Pipelines {
  private readonly modules = new Map<string, GPUShaderModule>();
  private readonly byKey = new Map<string, PipelineEntry>();
  /** The same pipelines by kernel, entry and (frozen) constants object, for lookups that build no key. */
  private readonly quick = new Map<KernelName, Map<string, { plain: PipelineEntry | null; byConstants: WeakMap<object, PipelineEntry> }>>();
  /** Per kernel, the device-feature flags it tests and their part of a pipeline key (cleared when the features change). */
  private readonly variants = new Map<KernelName, { tested: Set<string>; flags: string[]; key: string }>();

  constructor(
    private readonly device: GPUDevice,
    private features: ReadonlySet<KernelFeature>,
    /** Receives each compilation's validation error scope. */
    private readonly track: (scope: Promise<GPUError | null>, doing: string) => void,
  ) {}

  /** Compiles kernels for these features from now on (pipelines of the old ones are kept for a switch back). */
  useFeatures(features: ReadonlySet<KernelFeature>): void {
    this.features = features;
    this.variants.clear();
    this.quick.clear();
  }

  /** Every pipeline compiled so far. */
  entries(): IterableIterator<PipelineEntry> {
    return this.byKey.values();
  }

  /**
   * The pipeline, its layout and its bind groups; looked up per dispatch. Without op flags, and
   * with no constants or frozen ones (the ops' own tables), it is found by identity, building no
   * key at all; otherwise by a key built without sorting or JSON.
   */
  entry(kernel: KernelName, entry: string, constants: Record<string, number> | undefined, opFlags: readonly string[] | undefined): PipelineEntry {
    if (opFlags && opFlags.length > 0) return this.keyed(kernel, entry, constants, opFlags);
    let byEntry = this.quick.get(kernel);
    if (!byEntry) this.quick.set(kernel, (byEntry = new Map()));
    let quick = byEntry.get(entry);
    if (!quick) byEntry.set(entry, (quick = { plain: null, byConstants: new WeakMap() }));
    let found = constants ? quick.byConstants.get(constants) : quick.plain;
    if (!found) {
      found = this.keyed(kernel, entry, constants, opFlags);
      if (!constants) quick.plain = found;
      else if (Object.isFrozen(constants)) quick.byConstants.set(constants, found);
    }
    return found;
  }

  private keyed(kernel: KernelName, entry: string, constants: Record<string, number> | undefined, opFlags: readonly string[] | undefined): PipelineEntry {
    let variant = this.variants.get(kernel);
    if (!variant) {
      const tested = kernelFlags(kernelSource(kernel));
      const flags = featureFlags(this.features).filter((f) => tested.has(f));
      variant = { tested, flags, key: `${kernel}[${flags.join(',')}]` };
      this.variants.set(kernel, variant);
    }
    let flags = variant.flags;
    let variantKey = variant.key;
    if (opFlags && opFlags.length > 0) {
      const tested = variant.tested;
      flags = [...flags, ...opFlags.filter((f) => tested.has(f))].sort();
      variantKey = `${kernel}[${flags.join(',')}]`;
    }
    let key = `${variantKey}:${entry}:`;
    // Ops build their constants in a fixed order, and a different order only costs a second copy of the same pipeline.
    for (const name in constants) key += `${name}=${constants[name]},`;
    let found = this.byKey.get(key);
    if (!found) {
      this.device.pushErrorScope('validation');
      let module = this.modules.get(variantKey);
      if (!module) {
        module = this.device.createShaderModule({ label: variantKey, code: specialize(kernelSource(kernel), new Set(flags)) });
        this.modules.set(variantKey, module);
      }
      const pipeline = this.device.createComputePipeline({
        label: `${variantKey}.${entry}`,
        layout: 'auto',
        compute: { module, entryPoint: entry, constants: constants ?? {} },
      });
      this.track(this.device.popErrorScope(), `compiling kernel ${kernel}.${entry}`);
      // getBindGroupLayout() makes a new object per call.
      found = { pipeline, layout: pipeline.getBindGroupLayout(0), groups: new Map() };
      this.byKey.set(key, found);
    }
    return found;
  }
}
