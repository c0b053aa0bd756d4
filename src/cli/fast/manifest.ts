import { readFileSync } from 'node:fs';

/** The parts of oclif.manifest.json the fast path reads (written by scripts/write-manifest.mjs). */
export interface ManifestFlag {
  name: string;
  type: 'boolean' | 'option';
  char?: string;
  aliases?: string[];
  charAliases?: string[];
  options?: string[];
  multiple?: boolean;
  default?: unknown;
  env?: string;
  allowNo?: boolean;
  allowStdin?: boolean | 'only';
  required?: boolean;
  dependsOn?: string[];
  exclusive?: string[];
  exactlyOne?: string[];
  relationships?: unknown[];
  hasDynamicHelp?: boolean;
  /** Added by scripts/write-manifest.mjs: how an option's value is parsed. */
  jtm?: { value: 'string' | 'integer' | 'custom'; min?: number; max?: number };
}

export interface ManifestArg {
  name: string;
  required?: boolean;
  options?: string[];
  default?: unknown;
  multiple?: boolean;
}

export interface ManifestCommand {
  id: string;
  strict?: boolean;
  flags: Record<string, ManifestFlag>;
  args: Record<string, ManifestArg>;
}

export interface Manifest {
  commands: Record<string, ManifestCommand>;
}

/** The manifest, or undefined when there is none (not built: oclif then reads the command classes). */
export function readManifest(url: URL): Manifest | undefined {
  let text: string;
  try {
    text = readFileSync(url, 'utf8');
  } catch {
    return undefined;
  }
  return JSON.parse(text) as Manifest;
}
