// npm run docs: write the generated user documentation (docs/audit.md, docs/handlers.md, docs/versions.md).
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { auditDocs } from './audit-docs.js';
import { cliCommandLines } from './cli-docs.js';
import { handlersDocs } from './handlers-docs.js';
import { versionsDocs } from './versions-docs.js';

for (const [name, text] of [
  ['audit.md', auditDocs()],
  ['handlers.md', await handlersDocs(cliCommandLines)],
  ['versions.md', versionsDocs()],
] as const) {
  const file = join(import.meta.dirname, '..', 'docs', name);
  writeFileSync(file, text);
  process.stdout.write(`wrote ${file}\n`);
}
