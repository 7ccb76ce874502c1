import { docSections, docText } from '../../deployer/config/docs.ts';
import { flagCommand, usageError } from '../args.ts';

const USAGE = 'xamal docs [SECTION]';

/** `xamal docs` lists the sections of deploy.yml; `xamal docs SECTION` prints its annotated example. */
export default flagCommand({
  usage: USAGE,
  flags: {},
  examples: [
    ['xamal docs', 'The sections of config/deploy.yml'],
    ['xamal docs servers', "The servers section's annotated example"],
  ],
}, async ({ positionals }, io) => {
  if (positionals.length > 1) throw usageError('expected at most one SECTION', USAGE);
  const [section] = positionals;
  if (section) {
    io.out(docText(section).trimEnd());
    return 0;
  }
  const sections = docSections();
  const width = Math.max(...sections.map((s) => s.name.length));
  io.out(['Sections of config/deploy.yml (xamal docs SECTION for one):', '', ...sections.map((s) => `  ${s.name.padEnd(width)}  ${s.summary}`)].join('\n'));
  return 0;
});
