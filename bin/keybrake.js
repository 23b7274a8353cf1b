#!/usr/bin/env node
// The `keybrake` command. TypeScript sources run through tsx's loader: one package, no build step.
import { register } from 'tsx/esm/api';

register();
await import('../cli/main.ts');
