// `node --import tsx scripts/browser-demo.ts [out.png]`: trains the default task in the browser
// example (examples/browser) in headless Chromium, prints its validation reports and timing as
// JSON, and saves a screenshot of the page (default docs/browser-demo.png).
import { join } from 'node:path';
import { ROOT, openPage } from './browser.ts';

const out = process.argv[2] ?? join(ROOT, 'docs', 'browser-demo.png');
const session = await openPage('/examples/browser/index.html?autostart', { height: 980 });
try {
  await session.page.waitForFunction(() => ['trained', 'failed'].includes((window as { demo?: { state: string } }).demo?.state ?? ''), null, { timeout: 0, polling: 2000 });
  const demo = await session.page.evaluate(() => {
    const d = (window as unknown as { demo: { state: string; error: string | null; adapter: string; seconds: number; losses: number[]; evaluations: { report: { accuracy?: number } }[][]; predictions?: { rows: unknown[] } } }).demo;
    return { state: d.state, error: d.error, adapter: d.adapter, seconds: d.seconds, steps: d.losses.length, accuracy: d.evaluations.map((e) => e[0]!.report.accuracy), prediction: d.predictions?.rows[0] };
  });
  await session.page.screenshot({ path: out, fullPage: true });
  process.stdout.write(JSON.stringify({ ...demo, screenshot: out }) + '\n');
  if (demo.state !== 'trained') process.exitCode = 1;
} finally {
  await session.close();
}
