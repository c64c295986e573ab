// ESLint rule: no tier imports another tier (docs/ARCHITECTURE.md, "Dependency direction").
// device/, gateway/, cloud/ and provisioning/ may import protocol/, common/ and themselves;
// protocol/ and common/ import no tier. tests/, bench/, demo/ and cli/ are cross-tier and
// unchecked. Paths are resolved against the repository root, so the rule holds at any folder
// depth and for `export ... from` and `import()` as well as `import`.
import { dirname, relative, resolve, sep } from 'node:path';

const TIERS = new Set(['device', 'gateway', 'cloud', 'provisioning']);
const SHARED = new Set(['protocol', 'common']);
// Only test code may carry an exception: a running service never does.
const TEST_CODE = /\.test\.ts$|\/testing\/|\/test-support\//;

function topFolder(path) {
  return path.split('/')[0];
}

/** @type {import('eslint').Rule.RuleModule} */
export const tierBoundary = {
  meta: {
    type: 'problem',
    docs: { description: 'no tier (device, gateway, cloud, provisioning) imports another; protocol/ and common/ import none' },
    schema: [
      {
        type: 'object',
        properties: {
          root: { type: 'string' },
          /** Test file (repo-relative) → the other tiers' modules (repo-relative, .ts) it may import. */
          testExceptions: { type: 'object', additionalProperties: { type: 'array', items: { type: 'string' } } },
        },
        required: ['root'],
        additionalProperties: false,
      },
    ],
    messages: {
      crossTier: "{{from}}/ must not import {{to}}/ ('{{spec}}'): shared contract belongs in protocol/ (or common/), see docs/ARCHITECTURE.md",
    },
  },
  create(context) {
    const { root, testExceptions = {} } = context.options[0];
    const file = relative(root, context.filename).split(sep).join('/');
    const from = topFolder(file);
    if (!TIERS.has(from) && !SHARED.has(from)) return {};
    const allowed = new Set(TEST_CODE.test(file) ? (testExceptions[file] ?? []) : []);

    function check(source) {
      const spec = source?.type === 'Literal' ? source.value : source?.type === 'TemplateLiteral' && source.expressions.length === 0 ? source.quasis[0].value.cooked : undefined;
      if (typeof spec !== 'string' || !spec.startsWith('.')) return;
      const target = relative(root, resolve(dirname(context.filename), spec)).split(sep).join('/');
      const to = topFolder(target);
      if (!TIERS.has(to) || to === from) return;
      if (allowed.has(target.replace(/\.js$/, '.ts'))) return;
      context.report({ node: source, messageId: 'crossTier', data: { from, to, spec } });
    }

    return {
      ImportDeclaration: (node) => check(node.source),
      ExportNamedDeclaration: (node) => check(node.source),
      ExportAllDeclaration: (node) => check(node.source),
      ImportExpression: (node) => check(node.source),
    };
  },
};
