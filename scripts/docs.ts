// npm run docs: write the generated user documentation (docs/audit.md).
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { auditDocs } from './audit-docs.js';

const file = join(import.meta.dirname, '..', 'docs', 'audit.md');
writeFileSync(file, auditDocs());
process.stdout.write(`wrote ${file}\n`);
