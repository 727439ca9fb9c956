import { join } from 'node:path';
import ts from 'typescript';
import { type Manifest, MODELS, typeOf } from './manifests.js';
import { root } from './tools.js';

/**
 * Unknown fields. The schema validators accept fields they do not know (as a Kubernetes OpenAPI
 * schema does), but the API server's strict field validation (kubectl's default) refuses them, and a
 * misspelt field is silently ignored elsewhere. The same packages ship TypeScript interfaces generated
 * from the same schemas, so each manifest is type-checked as an object literal of its interface:
 * TypeScript's excess-property check reports every field the schema does not have, at any depth.
 */
export function unknownFields(manifests: Array<{ doc: Manifest; source: string }>): string[] {
  const file = join(root, 'test/deploy/__strict_fields__.ts');
  const imports = new Map<string, Set<string>>();
  const body: string[] = [];
  manifests.forEach(({ doc }, index) => {
    const entry = MODELS[typeOf(doc)];
    if (!entry) throw new Error(`${typeOf(doc)} has no model`);
    const [module, name] = entry.types;
    if (!imports.has(module)) imports.set(module, new Set());
    imports.get(module)!.add(name);
    body.push(`export const m${index}: ${alias(module, name)} = ${JSON.stringify(doc)};`);
  });
  const header = [...imports].map(([module, names]) => `import type { ${[...names].map((n) => `${n} as ${alias(module, n)}`).join(', ')} } from '${module}';`);
  const source = [...header, ...body].join('\n');

  const options: ts.CompilerOptions = {
    strict: true,
    noEmit: true,
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    skipLibCheck: true,
    types: [],
  };
  const host = ts.createCompilerHost(options);
  const getSourceFile = host.getSourceFile.bind(host);
  host.getSourceFile = (name, language, ...rest) =>
    name === file ? ts.createSourceFile(name, source, language, true) : getSourceFile(name, language, ...rest);
  const fileExists = host.fileExists.bind(host);
  host.fileExists = (name) => name === file || fileExists(name);
  const readFile = host.readFile.bind(host);
  host.readFile = (name) => (name === file ? source : readFile(name));

  const program = ts.createProgram([file], options, host);
  const sourceFile = program.getSourceFile(file)!;
  const lineOffset = header.length;
  return ts.getPreEmitDiagnostics(program).map((diagnostic) => {
    const message = ts.flattenDiagnosticMessageText(diagnostic.messageText, '\n');
    if (diagnostic.file !== sourceFile || diagnostic.start === undefined) return message;
    const { line } = sourceFile.getLineAndCharacterOfPosition(diagnostic.start);
    const target = manifests[line - lineOffset];
    return `${target?.source ?? '?'}: ${target?.doc.kind} ${target?.doc.metadata?.name}: ${message}`;
  });
}

function alias(module: string, name: string): string {
  return `${name}_${module.replace(/[^A-Za-z0-9]/g, '_')}`;
}
