import type { EngineErrorCode } from '../worker/protocol.ts';

/**
 * How to get WebGPU working, shown when the browser has none (`webgpu-missing`) or has it but
 * finds no adapter (`no-adapter`).
 */
export function WebGpuHelp({ code }: { code: Extract<EngineErrorCode, 'webgpu-missing' | 'no-adapter'> }) {
  return (
    <section className="help" aria-labelledby="webgpu-help-title">
      <h3 id="webgpu-help-title">
        {code === 'webgpu-missing' ? 'This browser has no WebGPU' : 'WebGPU found no usable GPU adapter'}
      </h3>
      {code === 'no-adapter' ? (
        <p>
          WebGPU is present but returned no adapter: the GPU or its driver may be blocklisted, or WebGPU is still behind
          a flag on this platform. Check <code>chrome://gpu</code> (look for “WebGPU: Hardware accelerated”), update the
          graphics driver, or enable <code>chrome://flags/#enable-unsafe-webgpu</code>.
        </p>
      ) : (
        <p>MoC Studio runs its model on your GPU through WebGPU, which this browser does not offer yet.</p>
      )}
      <p>Where WebGPU is available:</p>
      <ul>
        <li>
          <strong>Chrome or Edge 113+</strong> on Windows, macOS and ChromeOS have WebGPU on by default (Chrome 121+ on
          Android). Update the browser if it is older.
        </li>
        <li>
          <strong>Chrome or Chromium on Linux</strong>: open <code>chrome://flags/#enable-unsafe-webgpu</code> and
          enable it (and <code>chrome://flags/#enable-vulkan</code>), then relaunch; or start it with{' '}
          <code>--enable-unsafe-webgpu</code> <code>--enable-features=Vulkan</code>.
        </li>
        <li>
          <strong>Firefox</strong>: WebGPU ships on Windows from Firefox 141; elsewhere use Nightly, or set{' '}
          <code>dom.webgpu.enabled</code> in <code>about:config</code>.
        </li>
        <li>
          <strong>Safari</strong>: on by default from Safari 26; before that, enable WebGPU under Develop → Feature
          Flags.
        </li>
        <li>
          The page must come from <code>https://</code> or <code>localhost</code> (a secure context).
        </li>
      </ul>
    </section>
  );
}
