// Modules as PyTorch's torch.nn.Module: a module owns parameters (trained tensors), buffers
// (state that is not trained, such as a norm's running statistics) and child modules, each
// under a name, in registration order; state dicts list them under PyTorch's dotted names.
//
// Registration is explicit (registerParameter/registerBuffer/registerModule, each returning
// what it registers, so `this.weight = this.registerParameter('weight', w)` keeps a typed
// field): TypeScript has no __setattr__, and a Proxy that watched assignments would also
// catch class fields holding helper tensors or modules that are not state, would see fields
// in the order the compiler emits them rather than the order a constructor means, and would
// sit on every property access. An explicit call says what is state and in which order.
import { Tensor, keep, sameShape, shapeString, type DType } from '../tensor/tensor.ts';

/** Tensors under their dotted names, in PyTorch's state_dict() order. */
export type StateDict = Map<string, Tensor>;
/** A state dict as a Map or a plain object (a plain object orders integer-like keys first: prefer a Map). */
export type StateDictLike = ReadonlyMap<string, Tensor> | Readonly<Record<string, Tensor>>;

export interface LoadResult {
  missingKeys: string[];
  unexpectedKeys: string[];
}

export interface BufferOptions {
  /** Whether the buffer is part of the state dict (torch's `persistent`); true by default. */
  persistent?: boolean;
}

export function stateDictEntries(dict: StateDictLike): [string, Tensor][] {
  return dict instanceof Map ? [...dict] : Object.entries(dict as Record<string, Tensor>);
}

export class Module {
  /** Training mode (dropout active, batch norms updating their statistics); train()/eval() set it on the whole tree. */
  training = true;
  readonly #parameters = new Map<string, Tensor | null>();
  readonly #buffers = new Map<string, Tensor | null>();
  readonly #nonPersistent = new Set<string>();
  readonly #children = new Map<string, Module | null>();

  /** The module's computation; each module declares its own signature (TS classes are not callable: `m.forward(x)`). */
  forward(..._inputs: unknown[]): unknown {
    throw new Error(`${this.constructor.name} has no forward()`);
  }

  /**
   * Registers a trained tensor under `name` (f32; it is made to require grad and kept out of
   * tidy() scopes). null reserves the name for an absent parameter, as torch's bias=None.
   */
  registerParameter<T extends Tensor | null>(name: string, param: T): T {
    this.checkName(name, 'parameter');
    if (param) {
      if (param.dtype !== 'f32') throw new TypeError(`${this.constructor.name}.registerParameter('${name}'): a parameter is f32, got ${param.dtype}`);
      param.requiresGrad = true;
      keep(param);
    }
    this.#parameters.set(name, param);
    return param;
  }

  /** Registers state that is not trained (any dtype: u32 holds torch's int64 counters); null reserves the name. */
  registerBuffer<T extends Tensor | null>(name: string, buffer: T, options: BufferOptions = {}): T {
    this.checkName(name, 'buffer');
    if (buffer) keep(buffer);
    this.#buffers.set(name, buffer);
    if (options.persistent === false) this.#nonPersistent.add(name);
    return buffer;
  }

  registerModule<M extends Module | null>(name: string, module: M): M {
    this.checkName(name, 'module');
    this.#children.set(name, module);
    return module;
  }

  private checkName(name: string, what: string): void {
    const where = `${this.constructor.name}: cannot register ${what} '${name}'`;
    if (typeof name !== 'string' || name === '' || name.includes('.')) throw new TypeError(`${where}: a name is a non-empty string without '.'`);
    if (this.#parameters.has(name) || this.#buffers.has(name) || this.#children.has(name)) {
      throw new Error(`${where}: the name is taken`);
    }
  }

  /** Direct children with their names, in registration order. */
  *namedChildren(): Generator<[string, Module]> {
    const seen = new Set<Module>();
    for (const [name, m] of this.#children) {
      if (m && !seen.has(m)) {
        seen.add(m);
        yield [name, m];
      }
    }
  }

  children(): Module[] {
    return [...this.namedChildren()].map(([, m]) => m);
  }

  /** This module and every descendant, depth first, each once (a module shared by two parents appears under its first name). */
  *namedModules(prefix = '', seen = new Set<Module>()): Generator<[string, Module]> {
    if (seen.has(this)) return;
    seen.add(this);
    yield [prefix, this];
    for (const [name, m] of this.#children) if (m) yield* m.namedModules(prefix ? `${prefix}.${name}` : name, seen);
  }

  modules(): Module[] {
    return [...this.namedModules()].map(([, m]) => m);
  }

  /** Every parameter of the tree under its dotted name, each tensor once (tied weights under their first name), as torch's named_parameters(). */
  *namedParameters(): Generator<[string, Tensor]> {
    yield* this.namedTensors((m) => m.#parameters);
  }

  /** The parameters to hand an optimizer: each tensor once. */
  parameters(): Tensor[] {
    return [...this.namedParameters()].map(([, t]) => t);
  }

  /** Every buffer of the tree (persistent or not), each tensor once. */
  *namedBuffers(): Generator<[string, Tensor]> {
    yield* this.namedTensors((m) => m.#buffers);
  }

  buffers(): Tensor[] {
    return [...this.namedBuffers()].map(([, t]) => t);
  }

  private *namedTensors(own: (m: Module) => Map<string, Tensor | null>): Generator<[string, Tensor]> {
    const seen = new Set<Tensor>();
    for (const [prefix, m] of this.namedModules()) {
      for (const [name, t] of own(m)) {
        if (t && !seen.has(t)) {
          seen.add(t);
          yield [prefix ? `${prefix}.${name}` : name, t];
        }
      }
    }
  }

  /**
   * The parameters and persistent buffers under PyTorch's state_dict() keys and order: each
   * module's own parameters, then its own buffers, then each child's under `child.`. A tensor
   * reached twice (tied weights) is listed under both keys, as torch does. The values are the
   * module's own tensors (not copies): read or save them, do not dispose them.
   */
  stateDict(): StateDict {
    const out: StateDict = new Map();
    this.collectState('', out, new Set());
    return out;
  }

  private collectState(prefix: string, out: StateDict, visiting: Set<Module>): void {
    // torch recurses through every registration, so a module registered under two names is saved under both.
    if (visiting.has(this)) throw new Error(`${this.constructor.name}: the module tree has a cycle at '${prefix}'`);
    visiting.add(this);
    for (const [name, t] of this.#parameters) if (t) out.set(prefix + name, t);
    for (const [name, t] of this.#buffers) if (t && !this.#nonPersistent.has(name)) out.set(prefix + name, t);
    for (const [name, m] of this.#children) m?.collectState(`${prefix}${name}.`, out, visiting);
    visiting.delete(this);
  }

  /**
   * Copies a state dict's tensors into this module's own (in place, on the GPU: optimizers
   * holding the parameters keep working). Every key is checked before anything is copied, and
   * every problem is reported in one error: with `strict` (default) missing and unexpected
   * keys; always a shape or dtype that differs. Returns the keys that were missing or unexpected.
   */
  loadStateDict(dict: StateDictLike, options: { strict?: boolean } = {}): LoadResult {
    const strict = options.strict ?? true;
    const own = this.stateDict();
    const given = new Map(stateDictEntries(dict));
    const missingKeys = [...own.keys()].filter((k) => !given.has(k));
    const unexpectedKeys = [...given.keys()].filter((k) => !own.has(k));
    const errors: string[] = [];
    if (strict && missingKeys.length) errors.push(`Missing key(s) in state_dict: ${missingKeys.map((k) => `"${k}"`).join(', ')}.`);
    if (strict && unexpectedKeys.length) errors.push(`Unexpected key(s) in state_dict: ${unexpectedKeys.map((k) => `"${k}"`).join(', ')}.`);
    const copies: [Tensor, Tensor][] = [];
    for (const [key, target] of own) {
      const source = given.get(key);
      if (!source) continue;
      if (!(source instanceof Tensor)) {
        errors.push(`${key}: expected a Tensor, got ${typeof source}.`);
      } else if (!sameShape(source.shape, target.shape)) {
        errors.push(`size mismatch for ${key}: copying a param with shape ${shapeString(source.shape)} from checkpoint, the shape in current model is ${shapeString(target.shape)}.`);
      } else if (source.dtype !== target.dtype) {
        errors.push(`dtype mismatch for ${key}: copying a ${source.dtype} tensor from checkpoint, the tensor in current model is ${target.dtype}${dtypeHint(target.dtype)}.`);
      } else if (source.gpu !== target.gpu) {
        errors.push(`${key}: the checkpoint's tensor is on another device than the model's.`);
      } else {
        copies.push([source, target]);
      }
    }
    if (errors.length) throw new Error(`Error(s) in loading state_dict for ${this.constructor.name}:\n\t${errors.join('\n\t')}`);
    for (const [source, target] of copies) if (source !== target && target.size > 0) target.gpu.copy(source.binding(), target.binding());
    return { missingKeys, unexpectedKeys };
  }

  /** Sets training mode on this module and every descendant; returns this. */
  train(mode = true): this {
    for (const m of this.modules()) m.training = mode;
    return this;
  }

  /** Evaluation mode: train(false). */
  eval(): this {
    return this.train(false);
  }

  /** Drops every parameter's gradient (as torch's zero_grad(set_to_none=True)). */
  zeroGrad(): void {
    for (const p of this.parameters()) {
      p.grad?.dispose();
      p.grad = null;
    }
  }

  /** Frees every parameter and buffer of the tree; the module is unusable afterwards. */
  dispose(): void {
    for (const t of [...this.parameters(), ...this.buffers()]) t.dispose();
  }
}

function dtypeHint(dtype: DType): string {
  return dtype === 'f32' ? ' (load the file with { dtype: "f32" })' : '';
}
