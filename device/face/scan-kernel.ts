/**
 * A tiny hand-assembled WebAssembly SIMD kernel for the 1:N scan: for each row of a gallery in
 * linear memory, an approximate squared distance to the probe in float32 (f32x4 lanes). It only
 * screens: TemplateIndex recomputes in float64, in the canonical order, every row the screen
 * cannot rule out, so results are exactly those of a plain scan. No toolchain, no dependency:
 * the bytes below are the whole module (see the listing beside them).
 *
 *   (func (export "scan") (param $data i32) (param $q i32) (param $out i32) (param $rows i32) (param $lanes i32)
 *     (local $j i32) (local $qp i32) (local $acc v128) (local $d v128)
 *     block loop                                   ;; for each row
 *       rows == 0 → br 1
 *       acc = 0; j = lanes; qp = q
 *       loop                                       ;; for each 4 dims
 *         d = f32x4.sub(load data, load qp); acc = f32x4.add(f32x4.mul(d, d), acc)
 *         data += 16; qp += 16; j -= 1; br_if j
 *       end
 *       f32.store out (lane0 + lane1 + lane2 + lane3); out += 4; rows -= 1; br 0
 *     end end)
 */
const LEB_E4 = [0xe4, 0x01]; // f32x4.add
const LEB_E5 = [0xe5, 0x01]; // f32x4.sub
const LEB_E6 = [0xe6, 0x01]; // f32x4.mul

function section(id: number, content: number[]): number[] {
  return [id, ...uleb(content.length), ...content];
}

function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    let byte = n & 0x7f;
    n >>>= 7;
    if (n) byte |= 0x80;
    out.push(byte);
  } while (n);
  return out;
}

function moduleBytes(): Uint8Array {
  const get = (i: number) => [0x20, i];
  const set = (i: number) => [0x21, i];
  const tee = (i: number) => [0x22, i];
  const i32const = (v: number) => [0x41, v];
  const simd = (...op: number[]) => [0xfd, ...op];
  const body = [
    ...[0x02, 0x02, 0x7f, 0x02, 0x7b], // locals: 2 x i32, 2 x v128
    ...[0x02, 0x40], // block
    ...[0x03, 0x40], // loop (rows)
    ...get(3), 0x45, 0x0d, 0x01, // rows == 0 → exit
    ...simd(0x0c, ...new Array<number>(16).fill(0)), ...set(7), // acc = 0
    ...get(4), ...set(5), // j = lanes
    ...get(1), ...set(6), // qp = q
    ...[0x03, 0x40], // loop (lanes)
    ...get(0), ...simd(0x00, 0x02, 0x00), // v128.load data
    ...get(6), ...simd(0x00, 0x02, 0x00), // v128.load qp
    ...simd(...LEB_E5), ...tee(8), ...get(8), ...simd(...LEB_E6), // d*d
    ...get(7), ...simd(...LEB_E4), ...set(7), // acc += d*d
    ...get(0), ...i32const(16), 0x6a, ...set(0),
    ...get(6), ...i32const(16), 0x6a, ...set(6),
    ...get(5), ...i32const(1), 0x6b, ...tee(5), 0x0d, 0x00, // --j → continue
    0x0b, // end loop (lanes)
    ...get(2),
    ...get(7), ...simd(0x1f, 0), ...get(7), ...simd(0x1f, 1), 0x92,
    ...get(7), ...simd(0x1f, 2), 0x92,
    ...get(7), ...simd(0x1f, 3), 0x92,
    ...[0x38, 0x02, 0x00], // f32.store
    ...get(2), ...i32const(4), 0x6a, ...set(2),
    ...get(3), ...i32const(1), 0x6b, ...set(3),
    0x0c, 0x00, // br (rows)
    0x0b, // end loop (rows)
    0x0b, // end block
    0x0b, // end func
  ];
  const text = (s: string) => [...uleb(s.length), ...Buffer.from(s)];
  return Uint8Array.from([
    ...[0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00],
    ...section(1, [0x01, 0x60, 0x05, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0x00]),
    ...section(2, [0x01, ...text('env'), ...text('memory'), 0x02, 0x00, 0x01]),
    ...section(3, [0x01, 0x00]),
    ...section(7, [0x01, ...text('scan'), 0x00, 0x00]),
    ...section(10, [0x01, ...uleb(body.length), ...body]),
  ]);
}

/** The few WebAssembly types used here (the project's TypeScript lib has no DOM/wasm typings). */
export interface WasmMemory {
  readonly buffer: ArrayBuffer;
  grow(pages: number): number;
}
interface WasmApi {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { exports: Record<string, unknown> };
  Memory: new (descriptor: { initial: number }) => WasmMemory;
}
const wasm = (globalThis as unknown as { WebAssembly?: WasmApi }).WebAssembly;

export function newMemory(pages: number): WasmMemory {
  return new wasm!.Memory({ initial: pages });
}

let compiled: object | null | undefined;

/** The compiled kernel, or null where WebAssembly SIMD is unavailable (the JS scan is used then). */
export function scanModule(): object | null {
  if (compiled === undefined) {
    try {
      compiled = process.env.CLOCKFACE_NO_SIMD || !wasm ? null : new wasm.Module(moduleBytes());
    } catch {
      compiled = null;
    }
  }
  return compiled;
}

export type ScanFn = (data: number, q: number, out: number, rows: number, lanes: number) => void;

export function instantiateScan(memory: WasmMemory): ScanFn | null {
  const mod = scanModule();
  if (!mod) return null;
  return new wasm!.Instance(mod, { env: { memory } }).exports.scan as ScanFn;
}

/**
 * How far the float32 screen may sit from the float64 distance, relatively: 128 terms summed
 * per lane give under 3e-6; the margin is 30x that.
 */
export const SCREEN_SLACK = 1e-4;
