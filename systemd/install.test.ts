import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, cpSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { provision } from '../provisioning/test-support.js';
import { requireTool } from '../tests/support/tools.js';

/**
 * install.sh under --root: every file lands in a temp root exactly as it would on a Pi, and
 * the commands that would change the system (apt-get, useradd, systemctl, chown) are printed
 * instead of run, so the test reads them. Bundles come from a real `provision` run.
 */
const here = dirname(fileURLToPath(import.meta.url));
const script = join(here, 'install.sh');
let tmp: string;
let tenant: string;
let release: string;

function install(args: string[]) {
  const r = spawnSync('bash', [script, '--source', release, ...args], { encoding: 'utf8' });
  return { code: r.status, out: r.stdout, err: r.stderr };
}
const mode = (p: string) => statSync(p).mode & 0o777;

async function ok(argv: string[]) {
  const r = await provision(argv);
  if (r.code !== 0) throw new Error(r.stderr);
}

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'cf-install-'));
  tenant = join(tmp, 'acme');
  await ok(['tenant', 'init', '--out', tenant, '--tenant', 'acme']);
  await ok(['gateway', 'add', '--out', tenant, '--gateway', 'site-1', '--host', 'gw.local']);
  await ok(['device', 'add', '--out', tenant, '--device', 'door-1', '--gateway', 'site-1', '--profile', 'pi-standard']);
  // A stand-in release tree: what `npm run build` leaves (package.json and dist/).
  release = join(tmp, 'release');
  mkdirSync(join(release, 'dist', 'cli'), { recursive: true });
  writeFileSync(join(release, 'package.json'), '{"name":"clockface","version":"0.0.0-test"}\n');
  writeFileSync(join(release, 'package-lock.json'), '{"name":"clockface","lockfileVersion":3,"packages":{}}\n');
  writeFileSync(join(release, 'dist', 'cli', 'main.js'), 'console.log("clockface")\n');
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('install.sh', () => {
  it('is valid bash', () => {
    const r = spawnSync('bash', ['-n', script], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
  });

  it('passes shellcheck', () => {
    requireTool('shellcheck');
    const r = spawnSync('shellcheck', ['-S', 'warning', script], { encoding: 'utf8' });
    expect(r.stdout).toBe('');
    expect(r.status).toBe(0);
  });

  it('installs a terminal from its bundle: packages, user, folders, program, config, keys 0600, unit; then starts it', () => {
    const root = join(tmp, 'root-device');
    const r = install(['--root', root, '--bundle', join(tenant, 'devices', 'door-1.tar.gz')]);
    expect(r.err).not.toMatch(/error/);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/would run: env DEBIAN_FRONTEND=noninteractive apt-get install .*rpicam-apps/);
    expect(r.out).toMatch(/would run: .*apt-get install -y -qq nodejs/);
    expect(r.out).toContain('would run: useradd --system --user-group --no-create-home --home-dir /var/lib/clockface/device --shell /usr/sbin/nologin clockface-device');
    expect(r.out).toContain('would run: groupadd --system -f gpio');
    expect(r.out).toMatch(/would run: \/usr\/bin\/clockface provision check --bundle \S+door-1/);
    const conf = join(root, 'etc/clockface/device');
    for (const f of ['device-signing.key', 'device-sealing.key']) {
      expect(mode(join(conf, f)), f).toBe(0o600);
      expect(r.out).toContain(`would run: chown root:root /etc/clockface/device/${f}`);
    }
    // The card pepper is sealed with systemd-creds (TPM2 when present, else the host key), never copied in plain.
    expect(existsSync(join(conf, 'card-pepper.key'))).toBe(false);
    expect(r.out).toMatch(/would run: systemd-creds encrypt --name=card-pepper --with-key=auto \S+\/door-1\/card-pepper\.key \/etc\/clockface\/device\/card-pepper\.cred\n/);
    expect(r.out).toContain('would run: chown root:root /etc/clockface/device/card-pepper.cred');
    expect(mode(join(conf, 'card-pepper.cred.sha256'))).toBe(0o600);
    const pepper = readFileSync(join(tenant, 'devices', 'door-1', 'card-pepper.key'), 'utf8').trim();
    const installed = spawnSync('grep', ['-rlF', pepper, join(root, 'etc'), join(root, 'var')], { encoding: 'utf8' });
    expect(installed.stdout).toBe(''); // nowhere in plain
    // The TLS key is re-read on reload (rotation), so the service's group may read it.
    for (const f of ['config.json', 'device.key']) {
      expect(mode(join(conf, f)), f).toBe(0o640);
      expect(r.out).toContain(`would run: chown root:clockface-device /etc/clockface/device/${f}`);
    }
    expect(mode(conf)).toBe(0o750);
    expect(r.out).toContain('would run: sh -c cd /opt/clockface && npm ci --omit=dev --no-audit --no-fund');
    expect(readFileSync(join(conf, 'device.crt'))).toEqual(readFileSync(join(tenant, 'devices', 'door-1', 'device.crt')));
    expect(mode(join(root, 'var/lib/clockface/device'))).toBe(0o700);
    expect(readFileSync(join(root, 'etc/systemd/system/clockface-device.service'), 'utf8')).toBe(readFileSync(join(here, 'clockface-device.service'), 'utf8'));
    expect(readFileSync(join(root, 'usr/bin/clockface'), 'utf8')).toContain('exec /usr/bin/node /opt/clockface/dist/cli/main.js "$@"');
    expect(mode(join(root, 'usr/bin/clockface'))).toBe(0o755);
    expect(existsSync(join(root, 'opt/clockface/dist/cli/main.js'))).toBe(true);
    expect(r.out).toContain('would run: systemctl daemon-reload');
    expect(r.out).toContain('would run: systemctl enable clockface-device.service');
    expect(r.out).toContain('would run: systemctl restart clockface-device.service');
  });

  it('is idempotent: a second run changes nothing, restarts nothing and skips npm ci; a rotated bundle only reloads the unit', async () => {
    const root = join(tmp, 'root-device');
    const again = install(['--root', root, '--bundle', join(tenant, 'devices', 'door-1.tar.gz'), '--skip-packages']);
    expect(again.code).toBe(0);
    expect(again.err).toContain('done: nothing changed');
    expect(again.out).not.toContain('systemctl restart');
    expect(again.out).not.toContain('systemctl reload');
    expect(again.out).not.toContain('daemon-reload');
    expect(again.out).not.toContain('npm ci');
    expect(again.out).toContain('would run: systemctl start clockface-device.service');

    await ok(['rotate', '--out', tenant, '--device', 'door-1']);
    const rotated = install(['--root', root, '--bundle', join(tenant, 'devices', 'door-1.tar.gz'), '--skip-packages']);
    expect(rotated.code).toBe(0);
    expect(rotated.err).toContain('installed /etc/clockface/device/device.key (0640)');
    expect(rotated.out).toContain('would run: systemctl reload-or-restart clockface-device.service');
    expect(rotated.out).not.toContain('systemctl restart');
    expect(readFileSync(join(root, 'etc/clockface/device/device.crt'))).toEqual(readFileSync(join(tenant, 'devices', 'door-1', 'device.crt')));
  });

  it('restarts when the program, the lockfile or other bundle files change, and prunes files a new bundle dropped', () => {
    const root = join(tmp, 'root-device');
    const bundle = join(tmp, 'door-1-next');
    rmSync(bundle, { recursive: true, force: true });
    cpSync(join(tenant, 'devices', 'door-1'), bundle, { recursive: true });
    const run = () => install(['--root', root, '--bundle', bundle, '--skip-packages']);
    expect(run().err).toContain('done: nothing changed');

    writeFileSync(join(release, 'dist', 'cli', 'main.js'), 'console.log("clockface 2")\n');
    const program = run();
    expect(program.err).toContain('installed /opt/clockface/dist');
    expect(program.out).not.toContain('npm ci');
    expect(program.out).toContain('would run: systemctl restart clockface-device.service');
    expect(readFileSync(join(root, 'opt/clockface/dist/cli/main.js'), 'utf8')).toContain('clockface 2');

    writeFileSync(join(release, 'package-lock.json'), '{"name":"clockface","lockfileVersion":3,"packages":{"":{}}}\n');
    const lock = run();
    expect(lock.out).toContain('would run: sh -c cd /opt/clockface && npm ci --omit=dev --no-audit --no-fund');
    expect(lock.out).toContain('would run: systemctl restart clockface-device.service');

    writeFileSync(join(root, 'etc/clockface/device/old-option.json'), '{}', { mode: 0o640 });
    const config = JSON.parse(readFileSync(join(bundle, 'config.json'), 'utf8')) as { log: { level: string } };
    config.log.level = 'debug';
    writeFileSync(join(bundle, 'config.json'), JSON.stringify(config));
    const changed = run();
    expect(changed.err).toContain('removed /etc/clockface/device/old-option.json (not in the new bundle)');
    expect(existsSync(join(root, 'etc/clockface/device/old-option.json'))).toBe(false);
    expect(changed.out).toContain('would run: systemctl restart clockface-device.service');
    expect(run().err).toContain('done: nothing changed');
  });

  it('seals the card pepper again only when it or the key choice changes; --tpm2 insists on the TPM2; a plaintext copy from an older install goes', async () => {
    const root = join(tmp, 'root-pepper');
    const bundle = join(tmp, 'door-1-pepper');
    cpSync(join(tenant, 'devices', 'door-1'), bundle, { recursive: true });
    const run = (...extra: string[]) => install(['--root', root, '--bundle', bundle, '--skip-packages', ...extra]);
    const sealed = (out: string) => /would run: systemd-creds encrypt --name=card-pepper/.test(out);
    expect(sealed(run().out)).toBe(true);
    const again = run();
    expect(sealed(again.out)).toBe(false);
    expect(again.err).toContain('done: nothing changed');

    const tpm = run('--tpm2');
    expect(tpm.out).toMatch(/would run: systemd-creds encrypt --name=card-pepper --with-key=host\+tpm2 /);
    expect(tpm.out).toContain('would run: systemctl restart clockface-device.service');
    expect(sealed(run('--tpm2').out)).toBe(false);

    // Release 1 installed the pepper in plain, and the service read it there.
    writeFileSync(join(root, 'etc/clockface/device/card-pepper.key'), readFileSync(join(bundle, 'card-pepper.key')), { mode: 0o600 });
    const upgrade = run('--tpm2');
    expect(upgrade.err).toContain('removed the plaintext /etc/clockface/device/card-pepper.key');
    expect(existsSync(join(root, 'etc/clockface/device/card-pepper.key'))).toBe(false);
    expect(upgrade.out).toContain('would run: systemctl restart clockface-device.service');

    // A new pepper in the bundle (a re-provisioned tenant) is sealed again; the sealed file is never pruned.
    writeFileSync(join(bundle, 'card-pepper.key'), `${Buffer.alloc(32, 9).toString('base64')}\n`, { mode: 0o600 });
    writeFileSync(join(root, 'etc/clockface/device/card-pepper.cred'), 'stand-in for the sealed credential', { mode: 0o600 });
    const renewed = run('--tpm2');
    expect(sealed(renewed.out)).toBe(true);
    expect(renewed.err).not.toContain('card-pepper.cred (not in the new bundle)');
    expect(existsSync(join(root, 'etc/clockface/device/card-pepper.cred'))).toBe(true);
  });

  it('installs a gateway from its bundle folder, with the cloud token as a credential when there is one', () => {
    const bundle = join(tmp, 'gw-bundle');
    cpSync(join(tenant, 'gateways', 'site-1'), bundle, { recursive: true });
    writeFileSync(join(bundle, 'gateway.token'), 'token-from-cloud\n', { mode: 0o600 });
    const root = join(tmp, 'root-gateway');
    const r = install(['--root', root, '--bundle', bundle, '--skip-packages', '--no-start']);
    expect(r.code).toBe(0);
    expect(mode(join(root, 'etc/clockface/gateway/gateway.key'))).toBe(0o640);
    expect(r.out).toContain('would run: chown root:clockface-gateway /etc/clockface/gateway/gateway.key');
    expect(mode(join(root, 'etc/clockface/gateway/gateway.token'))).toBe(0o600);
    const dropIn = join(root, 'etc/systemd/system/clockface-gateway.service.d/cloud-token.conf');
    expect(readFileSync(dropIn, 'utf8')).toContain('LoadCredential=gateway.token:/etc/clockface/gateway/gateway.token');
    expect(r.out).toContain('would run: systemctl enable clockface-gateway.service');
    expect(r.out).not.toMatch(/systemctl (re)?start/);
    expect(r.out).not.toContain('groupadd');

    // Without a token in the new bundle, neither the token nor its credential drop-in remain.
    rmSync(join(bundle, 'gateway.token'));
    const off = install(['--root', root, '--bundle', bundle, '--skip-packages']);
    expect(off.code).toBe(0);
    expect(existsSync(join(root, 'etc/clockface/gateway/gateway.token'))).toBe(false);
    expect(existsSync(dropIn)).toBe(false);
    expect(off.out).toContain('would run: systemctl daemon-reload');
    expect(off.out).toContain('would run: systemctl restart clockface-gateway.service');
  });

  it("installs a tenant's cloud keyring readable by the cloud service only: 0750/0640 root:clockface-cloud", async () => {
    await ok(['tenant', 'export-cloud', '--out', tenant]);
    const exported = join(tenant, 'cloud', 'acme');
    // export-cloud writes the operator's copy 0600: the service user could not read that.
    expect(mode(join(exported, 'cloud-sealing.key'))).toBe(0o600);
    const root = join(tmp, 'root-cloud-keys');
    const r = install(['--root', root, '--role', 'cloud', '--cloud-keys', exported, '--skip-packages', '--no-start']);
    expect(r.err).not.toMatch(/error/);
    expect(r.code).toBe(0);
    const ring = join(root, 'etc/clockface/cloud/tenants/acme');
    expect(mode(join(root, 'etc/clockface/cloud/tenants'))).toBe(0o750);
    expect(mode(ring)).toBe(0o750);
    expect(r.out).toContain('would run: chown root:clockface-cloud /etc/clockface/cloud/tenants/acme');
    for (const f of ['cloud-sealing.key', 'admin-signing.key', 'card-pepper.key', 'admin-signing.pub']) {
      expect(readFileSync(join(ring, f))).toEqual(readFileSync(join(exported, f)));
      expect(mode(join(ring, f)), f).toBe(0o640);
      expect(r.out).toContain(`would run: chown root:clockface-cloud /etc/clockface/cloud/tenants/acme/${f}`);
    }
    // A keyring put there by hand is brought to the same modes.
    writeFileSync(join(ring, 'extra.key'), 'x', { mode: 0o600 });
    const again = install(['--root', root, '--role', 'cloud', '--skip-packages', '--no-start']);
    expect(again.code).toBe(0);
    expect(mode(join(ring, 'extra.key'))).toBe(0o640);
    // The tenant folder with the CA key is not a cloud keyring.
    const refused = install(['--root', root, '--role', 'cloud', '--cloud-keys', join(tenant, 'tenant'), '--skip-packages', '--no-start']);
    expect(refused.code).toBe(1);
  });

  it('installs the cloud unit; its TLS key becomes a credential only when there is one', () => {
    const root = join(tmp, 'root-cloud');
    const plain = install(['--root', root, '--role', 'cloud', '--skip-packages', '--no-start']);
    expect(plain.code).toBe(0);
    expect(existsSync(join(root, 'etc/systemd/system/clockface-cloud.service'))).toBe(true);
    expect(existsSync(join(root, 'etc/systemd/system/clockface-cloud.service.d/tls-key.conf'))).toBe(false);
    writeFileSync(join(root, 'etc/clockface/cloud/tls.key'), 'key', { mode: 0o600 });
    const tls = install(['--root', root, '--role', 'cloud', '--skip-packages', '--no-start']);
    expect(tls.code).toBe(0);
    expect(readFileSync(join(root, 'etc/systemd/system/clockface-cloud.service.d/tls-key.conf'), 'utf8')).toContain('Environment=CLOCKFACE_HTTP__TLS__KEY=%d/tls.key');
    expect(tls.out).toContain('would run: systemctl daemon-reload');
  });

  it('refuses incomplete bundles, archives with unsafe paths and a role that does not match', () => {
    const partial = join(tmp, 'partial');
    cpSync(join(tenant, 'devices', 'door-1'), partial, { recursive: true });
    rmSync(join(partial, 'device-signing.key'));
    const r1 = install(['--root', join(tmp, 'root-x'), '--bundle', partial, '--skip-packages']);
    expect(r1.code).toBe(1);
    expect(r1.err).toContain('bundle is incomplete: device-signing.key is missing');

    const evil = join(tmp, 'evil.tar.gz');
    mkdirSync(join(tmp, 'evil', 'b'), { recursive: true });
    writeFileSync(join(tmp, 'evil', 'x'), 'x');
    spawnSync('tar', ['-czPf', evil, '-C', join(tmp, 'evil', 'b'), '../x']);
    const r2 = install(['--root', join(tmp, 'root-x'), '--bundle', evil, '--skip-packages']);
    expect(r2.code).toBe(1);
    expect(r2.err).toMatch(/unsafe paths/);

    const r3 = install(['--root', join(tmp, 'root-x'), '--role', 'gateway', '--bundle', join(tenant, 'devices', 'door-1.tar.gz'), '--skip-packages']);
    expect(r3.code).toBe(1);
    expect(r3.err).toMatch(/does not match the device bundle/);
    expect(existsSync(join(tmp, 'root-x', 'etc/clockface/device'))).toBe(false);
  });

  it('--uninstall removes units and program but keeps config and data; --purge removes those and the users', () => {
    const root = join(tmp, 'root-device');
    const r = install(['--root', root, '--uninstall']);
    expect(r.code).toBe(0);
    expect(r.out).toContain('would run: systemctl disable --now clockface-device.service');
    expect(existsSync(join(root, 'etc/systemd/system/clockface-device.service'))).toBe(false);
    expect(existsSync(join(root, 'usr/bin/clockface'))).toBe(false);
    expect(existsSync(join(root, 'opt/clockface'))).toBe(false);
    expect(existsSync(join(root, 'etc/clockface/device/device.key'))).toBe(true);
    const again = install(['--root', root, '--uninstall']);
    expect(again.code).toBe(0);
    const purge = install(['--root', root, '--uninstall', '--purge']);
    expect(purge.code).toBe(0);
    expect(purge.out).toContain('would run: userdel clockface-device');
    expect(existsSync(join(root, 'etc/clockface'))).toBe(false);
    expect(existsSync(join(root, 'var/lib/clockface'))).toBe(false);
  });
});
