#!/usr/bin/env node
// The `fen` command. Fen runs its TypeScript sources directly through tsx, so a
// fresh clone needs no build step between `npm ci` and `npm start`.
import { register } from 'tsx/esm/api';

register();
await import('../src/cli/main.ts');
