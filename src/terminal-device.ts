import { realpathSync, statSync } from 'node:fs';
import { basename } from 'node:path';

/**
 * Linux's fixed terminal majors: TTY_MAJOR (4: virtual consoles, ttyS), TTYAUX_MAJOR (5: /dev/tty, /dev/console,
 * /dev/ptmx), and the Unix98 pty slaves (136-143, /dev/pts/N), which sysfs does not list (include/uapi/linux/major.h).
 */
function isTerminalMajor(major: number): boolean {
  return major === 4 || major === 5 || (major >= 136 && major <= 143);
}

/** The major and minor numbers of a device number as Linux encodes them (glibc's gnu_dev_major/minor). */
export function deviceNumbers(rdev: number): { major: number; minor: number } {
  // Above 2^32 the high bits: Number arithmetic, not 32-bit bitwise operators.
  const high = Math.floor(rdev / 2 ** 32);
  const low = rdev % 2 ** 32;
  return {
    major: ((low >>> 8) & 0xfff) | ((high & ~0xfff) >>> 0),
    minor: ((low & 0xff) | ((low >>> 12) & 0xfff00) | ((high & 0xfff) << 20)) >>> 0,
  };
}

/**
 * Whether the character device numbered `rdev` is a terminal (a console, a virtual console, a serial line, a pty):
 * the kernel's own class for it (`/sys/dev/char/M:m/subsystem` is `tty` for every registered tty driver, whatever its
 * name or major: /dev/console, hvc0, ttyAMA0, ttyUSB0), or one of the fixed terminal majors (Unix98 pty slaves have
 * no sysfs entry; a host without /sys mounted has none at all). Decided by what the device is, not by its name, and
 * without opening it: an open of a terminal is not free of effects (a serial line may wait for its carrier, a
 * process without a controlling terminal may acquire it).
 */
export function isTerminalDevice(rdev: number): boolean {
  const { major, minor } = deviceNumbers(rdev);
  if (isTerminalMajor(major)) return true;
  try {
    return basename(realpathSync(`/sys/dev/char/${major}:${minor}/subsystem`)) === 'tty';
  } catch {
    return false;
  }
}

/** Whether `path` (followed if a link) is, on this host, a character device that is a terminal. Missing: false. */
export function isTerminalPath(path: string): boolean {
  let st;
  try {
    st = statSync(path, { throwIfNoEntry: false });
  } catch {
    return false;
  }
  return st !== undefined && st.isCharacterDevice() && isTerminalDevice(st.rdev);
}
