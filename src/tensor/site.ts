// Which op is running, and where it was called from: what the profiler and checkNumerics name.
// Read from the JavaScript stack only while one of them is on (a stack costs tens of
// microseconds; nothing is read otherwise). In backward, the op is the one whose gradient runs,
// with the stack of its forward call, kept when its node was recorded.
import { setTapeProbe, type Node, type Tensor } from './tensor.ts';

/** An op and where it was called. */
export interface OpSite {
  /** The op's name: the engine function the caller called (e.g. `log`, `matmul`), with ` (backward)` for its gradient. */
  op: string;
  /** The caller's frame, `file:line:column` (empty where the stack does not show it). */
  caller: string;
  /** The stack from the op call outwards, one frame a line. */
  stack: string;
  backward: boolean;
}

/** Engine files whose functions are ops (or the tape): the op is the outermost such frame, so a derived op is named, not the primitives it calls. */
const OP_FILE = /[\\/]src[\\/](ops|tensor)[\\/]/;
/** Frames that are the instruments themselves or the device, skipped from the top. */
const INSTRUMENT_FILE = /[\\/]src[\\/](gpu[\\/]|tensor[\\/](site|profile|numerics|memory)\.ts)/;

const origins = new WeakMap<Node, OpSite>();
let backwardNode: Node | null = null;
const recordListeners = new Set<(out: Tensor, inputs: readonly Tensor[]) => void>();
let users = 0;

const probe = {
  recorded(out: Tensor, inputs: readonly Tensor[]): void {
    if (out.node && !backwardNode) origins.set(out.node, forwardSite());
    for (const listener of recordListeners) listener(out, inputs);
  },
  backwardOf(node: Node): void {
    backwardNode = node;
  },
  gradientsOf(node: Node, grads: readonly (Tensor | null)[]): void {
    // Checked as the gradient's own output, still named after the node.
    for (const g of grads) if (g) for (const listener of recordListeners) listener(g, node.inputs);
    backwardNode = null;
  },
};

/** Starts watching the tape (each instrument that needs sites calls it once while on); the returned function stops. */
export function watchSites(onRecord?: (out: Tensor, inputs: readonly Tensor[]) => void): () => void {
  if (users++ === 0) {
    backwardNode = null;
    setTapeProbe(probe);
  }
  if (onRecord) recordListeners.add(onRecord);
  let stopped = false;
  return () => {
    if (stopped) return;
    stopped = true;
    if (onRecord) recordListeners.delete(onRecord);
    if (--users === 0) setTapeProbe(null);
  };
}

/** The kernel launched last (the instruments tell it): names an op whose function is anonymous, made by a factory (`elementwise.log` is `log`). */
let lastKernel = 'op';

export function noteKernel(kernel: string): void {
  lastKernel = kernel;
}

/** The op running now: the gradient being computed in backward, else read from the stack. */
export function currentSite(): OpSite {
  const fallbackOp = lastKernel.slice(lastKernel.lastIndexOf('.') + 1);
  if (backwardNode) {
    const origin = origins.get(backwardNode);
    return { op: `${origin?.op ?? fallbackOp} (backward)`, caller: origin?.caller ?? '', stack: origin?.stack ?? '', backward: true };
  }
  return forwardSite(fallbackOp);
}

/** Sites by their stack's raw positions: a formatted stack costs a millisecond where source maps are on (tsx, vitest), the raw positions a few microseconds. */
const sitesByPositions = new Map<string, OpSite>();
const MAX_CACHED_SITES = 10_000;

type V8Error = ErrorConstructor & {
  captureStackTrace?(target: object, constructorOpt?: unknown): void;
  prepareStackTrace?: ((error: Error, callsites: { getFileName(): string | null; getLineNumber(): number | null; getColumnNumber(): number | null }[]) => unknown) | undefined;
};

function forwardSite(fallbackOp = lastKernel.slice(lastKernel.lastIndexOf('.') + 1)): OpSite {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 40;
  try {
    const key = rawPositions();
    if (key === null) return siteOfStack(new Error().stack ?? '', fallbackOp);
    const cacheKey = `${fallbackOp}|${key}`;
    let site = sitesByPositions.get(cacheKey);
    if (!site) {
      if (sitesByPositions.size >= MAX_CACHED_SITES) sitesByPositions.clear();
      sitesByPositions.set(cacheKey, (site = siteOfStack(new Error().stack ?? '', fallbackOp)));
    }
    return site;
  } finally {
    Error.stackTraceLimit = limit;
  }
}

/** The stack's frames as raw file:line:column positions (V8: Node, Deno, Chromium); null elsewhere. */
function rawPositions(): string | null {
  const v8 = Error as V8Error;
  if (typeof v8.captureStackTrace !== 'function') return null;
  const prepare = v8.prepareStackTrace;
  v8.prepareStackTrace = (_error, callsites) => callsites.map((c) => `${c.getFileName()}:${c.getLineNumber()}:${c.getColumnNumber()}`).join('|');
  try {
    const holder: { stack?: unknown } = {};
    v8.captureStackTrace(holder);
    return typeof holder.stack === 'string' ? holder.stack : null;
  } finally {
    v8.prepareStackTrace = prepare;
  }
}

/** The op and its caller in a V8 or SpiderMonkey/JavaScriptCore stack (exported for tests). */
export function siteOfStack(raw: string, fallbackOp: string): OpSite {
  const frames = raw.split('\n').map((l) => l.trim()).filter((l) => l.startsWith('at ') || /@/.test(l));
  let i = 0;
  while (i < frames.length && INSTRUMENT_FILE.test(frames[i]!)) i++;
  let op = -1;
  while (i < frames.length && OP_FILE.test(frames[i]!)) op = i++;
  // Work launched outside the ops (an optimizer's kernel, a custom dispatch): named by the function that launched it.
  // Where no frame names an engine source file (a bundle), the kernel names the op and the caller is unknown.
  if (i === 0) return { op: fallbackOp, caller: '', stack: '', backward: false };
  if (op < 0 && i < frames.length - 1) op = i++;
  const name = op >= 0 ? functionName(frames[op]!) : '';
  const callerFrames = frames.slice(i);
  return { op: name || fallbackOp, caller: location(callerFrames[0] ?? ''), stack: callerFrames.join('\n'), backward: false };
}

/** `log` of `at Module.log (file:1:2)`, `at log (…)` or `log@file:1:2`; '' for an anonymous frame. */
function functionName(frame: string): string {
  const v8 = /^at (?:async )?([^\s(]+) \(/.exec(frame);
  const name = v8 ? v8[1]! : /^([^@]*)@/.exec(frame)?.[1] ?? '';
  const last = name.replace(/^(Module|Object)\./, '');
  return last === '<anonymous>' ? '' : last;
}

/** `file:line:column` of a frame. */
function location(frame: string): string {
  const m = /\(?((?:file:\/\/|\/|[A-Za-z]:|https?:\/\/)[^()]*:\d+:\d+)\)?$/.exec(frame);
  return m ? m[1]! : frame.replace(/^at /, '');
}
