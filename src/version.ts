// vitgraph's own version, read once from package.json (recorded in every exported model).

import { readFileSync } from 'node:fs';

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };

export const VITGRAPH_VERSION: string = pkg.version;
