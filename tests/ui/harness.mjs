// The environment the browser tests run against: the real gateway binary in front of the project's mock upstream
// (as tests/clients/conftest.py starts them), in a throwaway HOME and config directory.

import { spawn, execFile } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const REPO = path.resolve(HERE, '..', '..');
export const ACCOUNT_KEY = 'sk-ant-api03-good-ui-tests';
const MASTER_KEY = 'ui-test-master-key';
const STARTUP_MS = 30000; // generous: a busy 2-core CI machine

function need(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set (see tests/ui/README.md)`);
  if (!fs.existsSync(value)) throw new Error(`${name}=${value} does not exist; build it with \`cargo build --workspace\``);
  return value;
}

function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** Spawns `cmd` and resolves with the first stdout line matching `pattern` (its match), logging to `log`. */
function spawnAndWaitFor(cmd, args, options, pattern, log) {
  const child = spawn(cmd, args, { ...options, stdio: ['ignore', 'pipe', fs.openSync(log, 'a')] });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${cmd} printed no ${pattern} within ${STARTUP_MS} ms; see ${log}`));
    }, STARTUP_MS);
    const lines = readline.createInterface({ input: child.stdout });
    const found = {};
    lines.on('line', (line) => {
      fs.appendFileSync(log, `${line}\n`);
      const m = pattern.exec(line);
      if (m && !found.m) {
        found.m = m;
        clearTimeout(timer);
        resolve({ child, match: m });
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      if (!found.m) reject(new Error(`${cmd} exited with ${code} during startup; see ${log}`));
    });
  });
}

function run(cmd, args, env) {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { env, timeout: 30000 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`${cmd} ${args.join(' ')} failed: ${error.message}\n${stdout}\n${stderr}`));
      else resolve(stdout);
    });
  });
}

async function waitHealthy(url, child, log) {
  const deadline = Date.now() + STARTUP_MS;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`the gateway exited with ${child.exitCode}; see ${log}`);
    try {
      const r = await fetch(`${url}/health`);
      if (r.ok) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`the gateway was not healthy within ${STARTUP_MS} ms; see ${log}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function stopChild(child) {
  if (!child || child.exitCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const kill = setTimeout(() => child.kill('SIGKILL'), 5000);
    child.once('exit', () => {
      clearTimeout(kill);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

async function enqueueAt(mockUrl, script) {
  const r = await fetch(`${mockUrl}/_mock/enqueue`, { method: 'POST', body: JSON.stringify(script) });
  if (!r.ok) throw new Error(`enqueue at the mock: ${r.status} ${await r.text()}`);
}

/** The real gateway + mock upstream. */
async function startReal(workdir) {
  need('LLM_GATEWAY_BIN');
  const mockBin = need('MOCK_UPSTREAM_BIN');
  const mockLog = path.join(workdir, 'mock-upstream.log');
  const mock = await spawnAndWaitFor(mockBin, ['--listen', '127.0.0.1:0'], {}, /^listening on (\S+)/, mockLog);
  let server = null;
  try {
    return await startGateway(workdir, mock, (s) => { server = s; });
  } catch (e) {
    // Nothing may outlive a failed start: a running child would keep the test process (and CI) waiting.
    await stopChild(server);
    await stopChild(mock.child);
    throw e;
  }
}

/** The gateway in front of the started mock; `spawned` learns of each gateway process as it starts. */
async function startGateway(workdir, mock, spawned) {
  const gatewayBin = need('LLM_GATEWAY_BIN');
  const mockLog = path.join(workdir, 'mock-upstream.log');
  const mockUrl = mock.match[1].replace(/\/$/, '');
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const config = path.join(workdir, 'config.yaml');
  fs.writeFileSync(config, [
    `server: {listen: "127.0.0.1:${port}"}`,
    `upstream: {base_url: "${mockUrl}"}`,
    'secrets: {backend: file}',
    'oauth:',
    `  authorize_url: "${mockUrl}/oauth/authorize"`,
    `  token_url: "${mockUrl}/v1/oauth/token"`,
    `  redirect_uri: "${url}/callback"`,
    '',
  ].join('\n'));
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(LLM_GATEWAY_|ANTHROPIC_|OPENAI_)/.test(k)));
  Object.assign(env, {
    LLM_GATEWAY_MASTER_KEY: MASTER_KEY, HOME: workdir, XDG_CONFIG_HOME: path.join(workdir, 'xdg-config'),
    XDG_DATA_HOME: path.join(workdir, 'xdg-data'), NO_PROXY: '127.0.0.1,localhost', NO_COLOR: '1', RUST_LOG: process.env.RUST_LOG || 'info',
  });
  const cli = async (...args) => {
    const out = await run(gatewayBin, ['--config', config, ...args], env);
    const lines = out.split('\n').map((l) => l.trim()).filter(Boolean);
    return { out, last: lines[lines.length - 1] };
  };
  // The SDK's own key: with a client key present the gateway needs one, as a shared gateway would.
  const sdkKey = (await cli('add-client-key', '--name', 'sdk-tests')).last;
  const log = path.join(workdir, 'gateway.log');
  let server = null;
  const start = async () => {
    server = spawn(gatewayBin, ['--config', config, 'server'], { env, cwd: workdir, stdio: ['ignore', fs.openSync(log, 'a'), fs.openSync(log, 'a')] });
    spawned(server);
    await waitHealthy(url, server, log);
  };
  await start();
  /** The admin API with the admin token the running gateway wrote to runtime.json (a new one at each start). */
  const admin = async (method, apiPath, body) => {
    const { admin_token: token } = JSON.parse(fs.readFileSync(path.join(workdir, 'runtime.json'), 'utf8'));
    const init = { method, headers: { authorization: `Bearer ${token}` } };
    if (body !== undefined) {
      init.headers['content-type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    const r = await fetch(`${url}/admin/api/v1${apiPath}`, init);
    const text = await r.text();
    if (!r.ok) throw new Error(`${method} ${apiPath}: ${r.status} ${text}`);
    return text ? JSON.parse(text) : null;
  };
  return {
    url, mockUrl, sdkKey, logs: [log, mockLog], admin,
    /** Claude Code's user settings file as the gateway sees it (HOME is the workdir). */
    claudeSettingsPath: path.join(workdir, '.claude', 'settings.json'),
    async mintCode() {
      // `llm-gateway ui --no-browser` prints the address with the one-time code.
      const { out } = await cli('ui', '--no-browser');
      const m = /#code=([^\s&]+)/.exec(out);
      if (!m) throw new Error(`llm-gateway ui --no-browser printed no #code=…:\n${out}`);
      return decodeURIComponent(m[1]);
    },
    readConfig: () => fs.readFileSync(config, 'utf8'),
    enqueue: (script) => enqueueAt(mockUrl, script),
    stopGateway: () => stopChild(server),
    startGateway: start,
    async close() {
      await stopChild(server);
      await stopChild(mock.child);
    },
  };
}

export async function startEnvironment() {
  const workdir = fs.mkdtempSync(path.join(os.tmpdir(), 'llm-gateway-ui-env-'));
  const env = await startReal(workdir);
  env.workdir = workdir;
  return env;
}

/** Sends `count` Messages requests with the official `anthropic` Python SDK; returns each one's HTTP status. */
export function sendMessages(env, count, key = env.sdkKey) {
  const venv = process.env.LLM_GATEWAY_VENV || '/var/tmp/llm-gateway-venv';
  const python = path.join(venv, 'bin', 'python');
  return new Promise((resolve, reject) => {
    execFile(python, [path.join(HERE, 'send_messages.py'), env.url, key, String(count)], { timeout: 180000, env: { ...process.env, NO_PROXY: '127.0.0.1,localhost' } }, (error, stdout, stderr) => {
      if (error) reject(new Error(`send_messages.py failed: ${error.message}\n${stderr}`));
      else resolve(JSON.parse(stdout.trim().split('\n').pop()));
    });
  });
}
