// deploy/kubernetes/: every manifest parses and is a named object; the generated files are
// what scripts/k8s-manifests.ts generates now; the core objects pass the Kubernetes and
// prometheus-operator schemas (kubernetes-models, offline); the PrometheusRule carries
// alerts/*.yml's groups and promtool accepts them; the dashboards' ConfigMaps hold every
// dashboard byte for byte; and the objects agree with each other, the image and the config.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parse, parseAllDocuments, stringify } from 'yaml';
import { Deployment, type IDeployment } from 'kubernetes-models/apps/v1';
import { PodDisruptionBudget, type IPodDisruptionBudget } from 'kubernetes-models/policy/v1';
import { ConfigMap, Secret, Service, type IConfigMap, type IService } from 'kubernetes-models/v1';
import {
  Probe,
  PrometheusRule,
  ServiceMonitor,
  type IProbe,
  type IPrometheusRule,
  type IServiceMonitor,
} from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1';
import { loadConfig } from '../src/config.ts';
import { CONFIG_FILE, DEPLOY_DIR, JOB, SECRET_DIR, generate } from '../scripts/k8s-manifests.ts';

const root = resolve(import.meta.dirname, '..');
const PROMTOOL = process.env['HOUSEKEEPER_PROMTOOL_BIN'] ?? 'promtool';

interface Obj {
  apiVersion: string;
  kind: string;
  metadata: { name: string; labels?: Record<string, string> };
}

const manifestFiles = readdirSync(DEPLOY_DIR).filter((f) => f.endsWith('.yaml')).sort();
const objects: { file: string; obj: Obj }[] = manifestFiles.flatMap((file) =>
  parseAllDocuments(readFileSync(join(DEPLOY_DIR, file), 'utf8')).map((d) => {
    assert.deepEqual(d.errors, [], `${file}: YAML errors`);
    return { file, obj: d.toJS() as Obj };
  }),
);
const all = (kind: string): Obj[] => objects.filter((o) => o.obj.kind === kind).map((o) => o.obj);
const one = <T>(kind: string): T => {
  const found = all(kind);
  assert.equal(found.length, 1, `expected one ${kind}, found ${found.length}`);
  return found[0] as T;
};
const kustomization = one<{ resources: string[]; namespace: string; configMapGenerator: { name: string; files: string[] }[] }>('Kustomization');
const deployment = one<IDeployment>('Deployment');
const service = one<IService>('Service');
const pod = deployment.spec?.template.spec;
const container = pod?.containers[0];

describe('deploy/kubernetes manifests', () => {
  test('every manifest parses and has apiVersion, kind and metadata.name', () => {
    assert.ok(objects.length >= 10, `only ${objects.length} objects`);
    for (const { file, obj } of objects) {
      assert.equal(typeof obj.apiVersion, 'string', `${file}: apiVersion`);
      assert.equal(typeof obj.kind, 'string', `${file}: kind`);
      assert.ok(obj.metadata?.name, `${file}: metadata.name`);
    }
  });

  test('the generated files are what scripts/k8s-manifests.ts generates now, and there are no others', () => {
    const generated = generate();
    assert.deepEqual([...generated.keys()].sort(), manifestFiles, 'a .yaml file no longer generated, or one not written yet');
    for (const [file, text] of generated) {
      assert.equal(readFileSync(join(DEPLOY_DIR, file), 'utf8'), text, `${file} drifted: bash scripts/node.sh scripts/k8s-manifests.ts --write`);
    }
  });

  test('the kustomization lists every object file but the example Secret, and generates the config ConfigMap', () => {
    assert.deepEqual([...kustomization.resources].sort(), manifestFiles.filter((f) => f !== 'kustomization.yaml' && f !== 'secret.example.yaml'));
    const gen = kustomization.configMapGenerator.find((g) => g.files.includes('housekeeper.yml'));
    assert.equal(pod?.volumes?.find((v) => v.name === 'config')?.configMap?.name, gen?.name);
  });

  test('the core objects pass the Kubernetes and prometheus-operator schemas', () => {
    const validators: Record<string, (o: Obj) => { validate(): void }> = {
      Deployment: (o) => new Deployment(o as unknown as IDeployment),
      PodDisruptionBudget: (o) => new PodDisruptionBudget(o as unknown as IPodDisruptionBudget),
      Service: (o) => new Service(o as unknown as IService),
      ConfigMap: (o) => new ConfigMap(o as unknown as IConfigMap),
      Secret: (o) => new Secret(o as never),
      ServiceMonitor: (o) => new ServiceMonitor(o as unknown as IServiceMonitor),
      Probe: (o) => new Probe(o as unknown as IProbe),
      PrometheusRule: (o) => new PrometheusRule(o as unknown as IPrometheusRule),
    };
    let validated = 0;
    for (const { file, obj } of objects) {
      const make = validators[obj.kind];
      if (obj.kind === 'Kustomization') continue;
      assert.ok(make, `${file}: no schema for ${obj.kind}`);
      assert.doesNotThrow(() => make(obj).validate(), `${file}: ${obj.kind} ${obj.metadata.name}`);
      validated++;
    }
    assert.equal(validated, objects.length - 1);
    // The validator does reject: a port given as text is not an integer.
    const broken = structuredClone(deployment);
    (broken.spec?.template.spec?.containers[0]?.ports?.[0] as { containerPort: unknown }).containerPort = '9847x';
    assert.throws(() => new Deployment(broken).validate(), /containerPort/);
  });

  test("the PrometheusRule's groups are alerts/*.yml's, and promtool accepts them", () => {
    const rule = one<IPrometheusRule>('PrometheusRule');
    const files = readdirSync(join(root, 'alerts')).filter((f) => f.endsWith('.yml')).sort();
    const groups = files.flatMap((f) => (parse(readFileSync(join(root, 'alerts', f), 'utf8')) as { groups: unknown[] }).groups);
    assert.ok(groups.length >= files.length);
    assert.deepEqual(rule.spec.groups, groups);
    const dir = mkdtempSync(join(tmpdir(), 'hk-k8s-rules-'));
    try {
      const file = join(dir, 'rules.yml');
      writeFileSync(file, stringify({ groups: rule.spec.groups }));
      const r = spawnSync(PROMTOOL, ['check', 'rules', file], { encoding: 'utf8' });
      assert.equal(r.status, 0, `promtool check rules:\n${r.stdout}${r.stderr}`);
      assert.match(r.stdout, /SUCCESS: \d+ rules found/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("the dashboards' ConfigMaps hold every dashboard byte for byte, labelled for Grafana's sidecar", () => {
    const maps = all('ConfigMap') as unknown as IConfigMap[];
    const files = readdirSync(join(root, 'dashboards')).filter((f) => f.endsWith('.json')).sort();
    const held = new Map<string, string>();
    for (const m of maps) {
      assert.equal(m.metadata?.labels?.['grafana_dashboard'], '1', `${m.metadata?.name}: no grafana_dashboard label`);
      for (const [k, v] of Object.entries(m.data ?? {})) {
        assert.equal(held.has(k), false, `${k} twice`);
        held.set(k, v);
      }
      // kubectl apply copies the object into an annotation limited to 256 KiB.
      assert.ok(JSON.stringify(m).length < 256 * 1024, `${m.metadata?.name} is too large for kubectl apply`);
    }
    assert.deepEqual([...held.keys()].sort(), files);
    for (const f of files) assert.equal(held.get(f), readFileSync(join(root, 'dashboards', f), 'utf8'), `${f} differs`);
  });
});

describe('deploy/kubernetes objects agree with each other, the image and the config', () => {
  const dockerEnv = (name: string): string | undefined => new RegExp(`\\b${name}=(\\S+)`).exec(readFileSync(join(root, 'Dockerfile'), 'utf8'))?.[1];

  test('the Deployment runs 2+ replicas, non-root, read-only root, probes on /readyz and /healthz', () => {
    assert.ok((deployment.spec?.replicas ?? 1) >= 2);
    assert.equal(pod?.securityContext?.runAsNonRoot, true);
    assert.equal(container?.securityContext?.readOnlyRootFilesystem, true);
    assert.equal(container?.securityContext?.allowPrivilegeEscalation, false);
    assert.deepEqual(container?.securityContext?.capabilities?.drop, ['ALL']);
    assert.equal(container?.readinessProbe?.httpGet?.path, '/readyz');
    assert.equal(container?.livenessProbe?.httpGet?.path, '/healthz');
    assert.ok(container?.resources?.requests?.['memory'] && container.resources.limits?.['memory']);
    // Every mount has its volume; /tmp, where the service writes, is an emptyDir.
    const volumes = new Map((pod?.volumes ?? []).map((v) => [v.name, v]));
    for (const m of container?.volumeMounts ?? []) assert.ok(volumes.has(m.name), `mount ${m.name} has no volume`);
    const tmp = container?.volumeMounts?.find((m) => m.mountPath === '/tmp');
    assert.ok(tmp && volumes.get(tmp.name)?.emptyDir, '/tmp is not a writable emptyDir');
  });

  test('Service, PodDisruptionBudget, ServiceMonitor and Probe reach the pods: selectors, port names, paths', () => {
    const podLabels = deployment.spec?.template.metadata?.labels ?? {};
    for (const [k, v] of Object.entries(service.spec?.selector ?? {})) assert.equal(podLabels[k], v, `Service selector ${k}`);
    const pdb = one<IPodDisruptionBudget>('PodDisruptionBudget');
    for (const [k, v] of Object.entries(pdb.spec?.selector?.matchLabels ?? {})) assert.equal(podLabels[k], v, `PodDisruptionBudget selector ${k}`);
    assert.ok(Number(pdb.spec?.minAvailable) < (deployment.spec?.replicas ?? 1), 'the budget would block every drain');
    const port = service.spec?.ports?.[0];
    assert.equal(port?.targetPort, container?.ports?.[0]?.name);
    const sm = one<IServiceMonitor>('ServiceMonitor');
    const svcLabels = (service.metadata?.labels ?? {}) as Record<string, string>;
    for (const [k, v] of Object.entries(sm.spec.selector.matchLabels ?? {})) assert.equal(svcLabels[k], v, `ServiceMonitor selector ${k}`);
    assert.equal(sm.spec.endpoints?.[0]?.port, port?.name);
    assert.equal(sm.spec.endpoints?.[0]?.path, '/metrics');
    // The pods' own series only: the targets are collected once, by the Probe.
    assert.deepEqual(sm.spec.endpoints?.[0]?.params, { collect: ['none'] });
    const probe = one<IProbe>('Probe');
    assert.equal(probe.spec.prober?.url, `${service.metadata?.name}.${kustomization.namespace}.svc:${port?.port}`);
    assert.equal(probe.spec.prober?.path, '/probe');
    // Both jobs carry the job the alerts select (job="housekeeper" on every non-node selector).
    assert.equal(probe.spec.jobName, JOB);
    assert.equal(sm.spec.jobLabel && svcLabels[sm.spec.jobLabel], JOB);
    const exprs = one<IPrometheusRule>('PrometheusRule').spec.groups?.flatMap((g) => g.rules?.map((r) => String(r.expr)) ?? []) ?? [];
    assert.ok(exprs.filter((e) => !e.includes('node_')).every((e) => e.includes(`job="${JOB}"`)), 'an alert without the scrape job');
  });

  test('the config mount is where the image looks, and the example config loads with the example Secret', () => {
    const configPath = dockerEnv('HOUSEKEEPER_CONFIG');
    assert.equal(configPath, '/etc/housekeeper/housekeeper.yml');
    assert.equal(container?.env?.find((e) => e.name === 'HOUSEKEEPER_CONFIG')?.value, configPath);
    assert.ok(container?.volumeMounts?.some((m) => m.mountPath === configPath && m.subPath === 'housekeeper.yml'), 'the config is not mounted by subPath at HOUSEKEEPER_CONFIG');
    const secretMount = container?.volumeMounts?.find((m) => m.mountPath === SECRET_DIR);
    assert.equal(pod?.volumes?.find((v) => v.name === secretMount?.name)?.secret?.secretName, one<Obj>('Secret').metadata.name);
    // The Secret's keys as the mounted files, in a temporary directory standing for SECRET_DIR.
    const dir = mkdtempSync(join(tmpdir(), 'hk-k8s-config-'));
    try {
      const secret = one<{ stringData: Record<string, string> }>('Secret');
      for (const [k, v] of Object.entries(secret.stringData)) writeFileSync(join(dir, k), v);
      const text = readFileSync(CONFIG_FILE, 'utf8').replaceAll(`${SECRET_DIR}/`, `${dir}/`);
      const file = join(dir, 'housekeeper.yml');
      writeFileSync(file, text);
      const cfg = loadConfig(file, {});
      assert.equal(cfg.server.host, '0.0.0.0', 'the pod must listen beyond loopback');
      assert.equal(cfg.server.port, container?.ports?.[0]?.containerPort);
      // Replicas share the state database (queue, dedupe, log): an embedded one per pod would not.
      assert.ok(cfg.state.url, 'state.url is required with more than one replica');
      assert.equal(cfg.remediation.enabled, true);
      assert.ok(cfg.webhook.token, 'no webhook token');
      // The Probe scrapes exactly the configured targets.
      const names = [...cfg.postgres, ...cfg.pgbouncer, ...cfg.redis, ...cfg.faiss, ...cfg.elasticsearch, ...cfg.certificates].map((t) => t.name);
      if (cfg.backups) names.push('backups');
      assert.deepEqual(one<IProbe>('Probe').spec.targets?.staticConfig?.static, names);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
