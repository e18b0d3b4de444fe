import { isMap, isScalar, isSeq, parseDocument, Scalar } from 'yaml';
import { scrubText } from '../log.ts';

// The configuration backup's redaction. The config file may hold secrets inline (a password
// in a URL, webhook.basic_auth.password, grafana.token); the backup directory is routinely
// copied off the host and read by more people than the config, and the runbook backs up
// secrets as their own kind (encrypted). So by default backup-run copies the config with
// every inline secret replaced by an environment reference ${HOUSEKEEPER_REDACTED_<FIELD>}:
// a restored file then fails at boot naming the field and the variable to set (or boots,
// when that variable holds the secret). ${ENV} references and *_file paths are not secrets
// and stay as they are. Comments and formatting are kept.

export const REDACTED_PREFIX = 'HOUSEKEEPER_REDACTED_';

// Keys whose values are secrets in housekeeper's config (and the usual names in general);
// `token_file`, `password_file` are paths and do not match (the name must end in the word).
const SECRET_KEY = /(^|_)(password|passwd|secret|token|api_?key|credentials?)$/i;
const ENV_REF = /^\$\{[A-Za-z_][A-Za-z0-9_]*\}$/;
const URL_PASSWORD = /^([a-z][a-z0-9+.-]*:\/\/[^/\s@:]*):([^/\s@]+)@/i;
const PARAM_PASSWORD = /([?&;\s]|^)(password|passwd|pwd|sslpassword)=([^&;\s]*)/gi;

export interface Redacted {
  text: string;
  /** Fields (paths like postgres.0.url) whose values were replaced; never the values. */
  fields: string[];
}

function envName(path: readonly string[], suffix = ''): string {
  return `${REDACTED_PREFIX}${path.join('_')}${suffix}`.toUpperCase().replace(/[^A-Z0-9_]/g, '_');
}

function redactScalar(node: Scalar, path: readonly string[], key: string | undefined, fields: string[]): void {
  const before = node.value;
  if (typeof before !== 'string') {
    // A number or boolean under a secret key (password: 123456) is a secret too.
    if (key !== undefined && SECRET_KEY.test(key) && before !== null && before !== undefined) {
      node.value = `\${${envName(path)}}`;
      node.type = Scalar.QUOTE_DOUBLE;
      fields.push(path.join('.'));
    }
    return;
  }
  let v = before;
  if (key !== undefined && SECRET_KEY.test(key) && !ENV_REF.test(v)) {
    v = `\${${envName(path)}}`;
  } else {
    v = v.replace(URL_PASSWORD, (m, head: string, pw: string) => (ENV_REF.test(pw) ? m : `${head}:\${${envName(path, '_password')}}@`));
    v = v.replace(PARAM_PASSWORD, (m, lead: string, name: string, pw: string) =>
      pw === '' || ENV_REF.test(pw) ? m : `${lead}${name}=\${${envName(path, '_password')}}`,
    );
    // The net: any value the service registered as a secret (expanded from ${ENV} or read
    // from a *_file at boot) that appears here literally.
    const scrubbed = scrubText(v);
    if (scrubbed !== v) v = scrubbed.split('***').join(`\${${envName(path)}}`);
  }
  if (v !== before) {
    node.value = v;
    // Quoted, so "${…}" stays one scalar inside a flow mapping ({ password: … }).
    node.type = Scalar.QUOTE_DOUBLE;
    fields.push(path.join('.'));
  }
}

function walk(node: unknown, path: string[], key: string | undefined, fields: string[]): void {
  if (isMap(node)) {
    for (const pair of node.items) {
      const k = isScalar(pair.key) ? String(pair.key.value) : '?';
      walk(pair.value, [...path, k], k, fields);
    }
  } else if (isSeq(node)) {
    node.items.forEach((item, i) => walk(item, [...path, String(i)], key, fields));
  } else if (isScalar(node)) {
    redactScalar(node, path, key, fields);
  }
}

/**
 * The config text with its inline secrets replaced (see above). Throws, without quoting
 * the text, when the file is not YAML or when a registered secret would remain in the
 * output (e.g. inside a key), rather than write it.
 */
export function redactConfig(text: string): Redacted {
  const doc = parseDocument(text, { keepSourceTokens: false });
  if (doc.errors.length > 0) throw new Error('the config file is not valid YAML: not copied');
  const fields: string[] = [];
  walk(doc.contents, [], undefined, fields);
  // Registered secrets inside comments are replaced by *** (harmless there).
  const body = scrubText(doc.toString({ lineWidth: 0 }));
  const header =
    `# housekeeper configuration backup: ${fields.length} inline secret value(s) replaced by \${${REDACTED_PREFIX}…}\n` +
    `# references. Set those environment variables (or put the values back) before using this file.\n`;
  const out = header + body;
  const check = parseDocument(out);
  if (check.errors.length > 0 || scrubText(out) !== out) throw new Error('redaction of the config file did not produce clean YAML: not copied');
  return { text: out, fields };
}
