#!/usr/bin/env node
// The `nerfad` command: registers tsx (TypeScript for the CLI and the experiment modules), then runs src/cli/main.ts.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../src/cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
