// Two implementations of the same work timed side by side (ours against a peer such as tfjs):
// samples of the two are taken in turn (a, b, then b, a, ...), so a shared machine's slow
// moments fall on both alike, and each ratio is the median over rounds of a sample of the
// first over the second's sample beside it; the ratio of the two fastest samples is given
// beside it (on a loaded machine, the least disturbed of each). Samples time to completion, as
// timing.ts explains.
import { median } from './overhead.ts';

/** One side of a paired comparison: `run` encodes one operation, `wait` waits for its queue. */
export interface PairedSide {
  run: () => void;
  wait: () => Promise<void>;
}

export interface PairedOptions {
  /** Wall time to aim for per sample (the slower side's). */
  targetMs: number;
  /** Timed rounds (one sample of each side) after `warmRounds` untimed ones. */
  samples: number;
  warmRounds: number;
}

export interface PairedTimes {
  reps: number;
  /** Per side, ms per operation of each timed sample: until encoded (host) and until done (total). */
  times: [{ host: number[]; total: number[] }, { host: number[]; total: number[] }];
  /** Per round, the first side's total over the second's. */
  ratios: number[];
}

const pause = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** One sample: `reps` runs, then the wait for the queue; per-op ms until encoded and until done. */
async function pairedSample(side: PairedSide, reps: number): Promise<{ host: number; total: number }> {
  await side.wait();
  // A software adapter's worker threads wind down on the same cores after a wait.
  await pause(5);
  const start = performance.now();
  for (let i = 0; i < reps; i++) side.run();
  const encoded = performance.now();
  await side.wait();
  const done = performance.now();
  return { host: (encoded - start) / reps, total: (done - start) / reps };
}

/** Times two sides in turn; both run the same reps, sized on the slower side's single op. */
export async function pairedSamples(sides: readonly [PairedSide, PairedSide], options: PairedOptions): Promise<PairedTimes> {
  let slowest = 0;
  for (const side of sides) {
    await pairedSample(side, 1);
    slowest = Math.max(slowest, (await pairedSample(side, 1)).total);
  }
  const reps = Math.max(1, Math.round(options.targetMs / Math.max(slowest, 1e-3)));
  const times: PairedTimes['times'] = [{ host: [], total: [] }, { host: [], total: [] }];
  const ratios: number[] = [];
  for (let round = 0; round < options.warmRounds + options.samples; round++) {
    if (round === options.warmRounds) (globalThis as { gc?: () => void }).gc?.();
    const order = round % 2 ? [1, 0] : [0, 1];
    const got: number[] = [];
    for (const s of order) {
      const t = await pairedSample(sides[s]!, reps);
      got[s] = t.total;
      if (round < options.warmRounds) continue;
      times[s]!.host.push(t.host);
      times[s]!.total.push(t.total);
    }
    if (round >= options.warmRounds) ratios.push(got[0]! / got[1]!);
  }
  return { reps, times, ratios };
}

/** What a section reports of a paired timing. */
export interface PairedSummary {
  /** Median ms per operation to completion, ours (the first side) and the peer's. */
  oursMs: number;
  tfjsMs: number;
  oursMinMs: number;
  tfjsMinMs: number;
  /** Median over rounds of ours / tfjs, each sample beside the other's. */
  ratio: number;
  /** Fastest sample of ours over fastest of tfjs: each side's least disturbed by the machine's other work. */
  fastestRatio: number;
  reps: number;
  samples: number;
}

export function pairedSummary({ reps, times: [o, t], ratios }: PairedTimes): PairedSummary {
  return {
    oursMs: median(o.total),
    tfjsMs: median(t.total),
    oursMinMs: Math.min(...o.total),
    tfjsMinMs: Math.min(...t.total),
    ratio: median(ratios),
    fastestRatio: Math.min(...o.total) / Math.min(...t.total),
    reps,
    samples: ratios.length,
  };
}
