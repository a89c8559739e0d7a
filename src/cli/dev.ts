// Runs the CLI from source: `node --import tsx src/cli/dev.ts <command> …` (bin/ runs the build).
import { run } from './main.ts';

process.exitCode = await run(process.argv);
