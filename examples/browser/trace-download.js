// The example page's trace download: profiles one training step (after two warm-up steps) and
// offers its Chrome trace as a file to open in ui.perfetto.dev or chrome://tracing, with the
// summary table beside it. fit() takes the hook as its `aroundStep` option.
import { profile } from '../../dist/browser/gpt2-prompt.js';

/** An aroundStep hook for fit() that profiles step `at` (from 0) and puts a download link and the summary in `container`. */
export function traceDownload(gpu, container, at = 2) {
  return async (index, step) => {
    if (index !== at) return step();
    const p = await profile(gpu, step);
    const link = document.createElement('a');
    link.href = URL.createObjectURL(new Blob([p.toChromeTrace()], { type: 'application/json' }));
    link.download = 'gpt2-prompt-step.trace.json';
    link.textContent = `Download the trace of training step ${index + 1} (${p.records.length} dispatches; open it in ui.perfetto.dev)`;
    const summary = document.createElement('pre');
    summary.textContent = p.summary(12);
    container.replaceChildren(link, summary);
  };
}
