// Runs the CLI from source: `node --import tsx src/cli/dev.ts <command> …` (bin/ runs the build).
import { run } from './main.js';

process.exitCode = await run(process.argv);
