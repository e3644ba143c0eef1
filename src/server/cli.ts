#!/usr/bin/env node
/** The `jwks-server` command (see admin-cli.ts), as installed by npm in node_modules/.bin. */
import { main } from './admin-cli.js';

process.exitCode = await main(process.argv.slice(2));
