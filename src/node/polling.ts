// Node edge: how Dawn's Node binding waits. While any promise of it is pending (a queue's
// onSubmittedWorkDone, a buffer's mapAsync) it polls its instance from a native callback that
// re-queues itself with setImmediate: one host core spins for as long as the GPU works. On a
// software adapter the GPU *is* the host's cores, so the spin takes a core from the kernels
// (measured, lavapipe, 2 cores: a 2-layer prompt step took 647 ms spinning, 350 ms relaxed). Relaxed
// polling spins for the first SPIN_MS of a wait, so short waits answer as fast as before, then
// polls once a millisecond.

/** How long a wait polls at full speed before it backs off. */
const SPIN_MS = 2;
/** A gap this long between Dawn's polls means the previous wait ended and this is a new one. */
const NEW_WAIT_GAP_MS = 5;

let installed = false;

/**
 * Dawn's poll callback: a function made by the native binding, anonymous and with a prototype
 * of its own. JavaScript functions, built-ins (named) and bound functions ("bound f", no
 * prototype) all fail one of these.
 */
export function isDawnPoll(fn: unknown): boolean {
  return typeof fn === 'function' && fn.name === '' && Object.hasOwn(fn, 'prototype') && Function.prototype.toString.call(fn).includes('[native code]');
}

/**
 * Makes Dawn's polling back off after SPIN_MS of a wait. Only Dawn's poll is deferred, and only
 * in a wait already longer than SPIN_MS; every other callback sees setImmediate as before.
 */
export function relaxDawnPolling(): void {
  if (installed) return;
  installed = true;
  const immediate = globalThis.setImmediate;
  let waitStart = -Infinity;
  let lastPoll = -Infinity;
  const relaxed = function (this: unknown, callback: (...args: unknown[]) => void, ...args: unknown[]) {
    if (isDawnPoll(callback)) {
      const now = performance.now();
      if (now - lastPoll > NEW_WAIT_GAP_MS) waitStart = now;
      lastPoll = now;
      if (now - waitStart > SPIN_MS) return setTimeout(callback, 1, ...args);
    }
    return immediate(callback, ...args);
  };
  // Keeps setImmediate.__promisify__ and friends.
  Object.assign(relaxed, immediate);
  globalThis.setImmediate = relaxed as typeof setImmediate;
}
