//! The process being read: its existence, the library mapped in it, the
//! registry's address (from the library's ELF dynamic symbol table), and
//! copies of its memory with `process_vm_readv`.

use super::Error;
use std::fs;
use std::io::ErrorKind;

/// The exported symbol that the library's registry is.
pub const SYMBOL: &str = "lwkt_registry";

pub struct Target {
    pub pid: i32,
    /// The program's name (/proc/PID/comm).
    pub comm: String,
    /// The library that holds the registry, as mapped.
    pub library: String,
    /// The registry's address in the process.
    pub registry: u64,
}

/// Why a copy failed.
pub enum ReadFail {
    /// The address is not mapped (any more): a retired thread state.
    Unmapped,
    /// Anything else, said in full.
    Fatal(Error),
}

/// Another process's memory, as the snapshot reads it (a trait so that
/// the reading rules can be tested on memory that changes on purpose).
pub trait Memory {
    /// Copy `len` bytes at `addr`.
    fn read(&self, addr: u64, len: usize) -> Result<Vec<u8>, ReadFail>;
}

impl Memory for Target {
    fn read(&self, addr: u64, len: usize) -> Result<Vec<u8>, ReadFail> {
        Target::read(self, addr, len)
    }
}

impl Target {
    /// Find the process and the registry in it.
    pub fn open(pid: i32) -> Result<Target, Error> {
        let proc_dir = format!("/proc/{pid}");
        if pid <= 0 || fs::metadata(&proc_dir).is_err() {
            return Err(Error::NoProcess(pid));
        }
        let comm = fs::read_to_string(format!("{proc_dir}/comm"))
            .map(|s| s.trim_end().to_string())
            .unwrap_or_default();
        let maps = match fs::read_to_string(format!("{proc_dir}/maps")) {
            Ok(m) => m,
            Err(e) if e.kind() == ErrorKind::PermissionDenied => {
                return Err(Error::NotPermitted(pid))
            }
            Err(e) if e.kind() == ErrorKind::NotFound => return Err(Error::NoProcess(pid)),
            Err(e) => return Err(Error::Other(format!("cannot read /proc/{pid}/maps: {e}"))),
        };
        if maps.is_empty() {
            // An exiting process (a zombie) or a kernel thread: nothing
            // mapped.
            let t = Target {
                pid,
                comm: comm.clone(),
                library: String::new(),
                registry: 0,
            };
            if !t.alive() {
                return Err(Error::Exited(pid));
            }
            return Err(Error::NoLibrary(pid, comm));
        }
        let mut objects = mapped_objects(&maps);
        // The library first: any other object is only a fallback (a
        // program that links the library statically into another name).
        objects.sort_by_key(|(path, _)| !file_name(path).contains("lwkt"));
        let mut stale = None;
        for (path, base) in objects {
            let Some(elf) = read_elf(&path).or_else(|| read_elf(&format!("{proc_dir}/root{path}")))
            else {
                continue;
            };
            match find_symbol(&elf, SYMBOL) {
                Some((value, exec)) => {
                    let registry = if exec { value } else { base + value };
                    return Ok(Target {
                        pid,
                        comm,
                        library: path,
                        registry,
                    });
                }
                None if file_name(&path).starts_with("liblwkt") => stale = Some(path),
                None => {}
            }
        }
        match stale {
            Some(path) => Err(Error::OldLibrary(pid, path)),
            None => Err(Error::NoLibrary(pid, comm)),
        }
    }

    /// Copy `len` bytes at `addr` out of the process.
    pub fn read(&self, addr: u64, len: usize) -> Result<Vec<u8>, ReadFail> {
        let mut buf = vec![0u8; len];
        let local = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: len,
        };
        let remote = libc::iovec {
            iov_base: addr as *mut libc::c_void,
            iov_len: len,
        };
        // SAFETY: `local` is our own buffer of `len` bytes; the remote
        // address is only read by the kernel, which checks it.
        let n = unsafe { libc::process_vm_readv(self.pid, &local, 1, &remote, 1, 0) };
        if n == len as isize {
            return Ok(buf);
        }
        if n >= 0 {
            return Err(ReadFail::Unmapped); // a partial copy: ran off a mapping
        }
        let e = std::io::Error::last_os_error();
        Err(match e.raw_os_error() {
            Some(libc::EFAULT) => ReadFail::Unmapped,
            Some(libc::ESRCH) => ReadFail::Fatal(Error::Exited(self.pid)),
            Some(libc::EPERM | libc::EACCES) => ReadFail::Fatal(Error::NotPermitted(self.pid)),
            Some(libc::ENOSYS) => ReadFail::Fatal(Error::Other(
                "this kernel has no process_vm_readv".to_string(),
            )),
            _ => ReadFail::Fatal(Error::Other(format!(
                "cannot read process {}: {e}",
                self.pid
            ))),
        })
    }

    /// `read`, where an unmapped address is the process going away or
    /// a broken registry.
    pub fn read_all(&self, addr: u64, len: usize) -> Result<Vec<u8>, Error> {
        self.read(addr, len).map_err(|f| match f {
            ReadFail::Fatal(e) => e,
            ReadFail::Unmapped if !self.alive() => Error::Exited(self.pid),
            ReadFail::Unmapped => Error::Other(format!(
                "process {}: the registry points at unmapped memory ({addr:#x})",
                self.pid
            )),
        })
    }

    /// A NUL-terminated string at `addr` (at most `max` bytes), or None.
    pub fn read_cstr(&self, addr: u64, max: usize) -> Option<String> {
        let mut out = Vec::new();
        let mut at = addr;
        while out.len() < max {
            // Never across a page boundary: the next page may be unmapped.
            let room = (4096 - (at % 4096)) as usize;
            let n = room.min(64);
            let bytes = self.read(at, n).ok()?;
            if let Some(end) = bytes.iter().position(|&b| b == 0) {
                out.extend_from_slice(&bytes[..end]);
                return Some(String::from_utf8_lossy(&out).into_owned());
            }
            out.extend_from_slice(&bytes);
            at += n as u64;
        }
        out.truncate(max);
        Some(String::from_utf8_lossy(&out).into_owned() + "...")
    }

    /// Does the process still exist (and is it not a zombie)?
    pub fn alive(&self) -> bool {
        match fs::read_to_string(format!("/proc/{}/stat", self.pid)) {
            Ok(stat) => !matches!(
                stat.rsplit_once(") ")
                    .and_then(|(_, rest)| rest.chars().next()),
                Some('Z' | 'X')
            ),
            Err(_) => false,
        }
    }

    /// The thread ids of the process now.
    pub fn tasks(&self) -> Result<Vec<u32>, Error> {
        let dir = fs::read_dir(format!("/proc/{}/task", self.pid))
            .map_err(|_| Error::Exited(self.pid))?;
        Ok(dir
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse().ok())
            .collect())
    }

    /// A thread's name (/proc/PID/task/TID/comm), or "?" once it is gone.
    pub fn thread_name(&self, tid: u32) -> String {
        fs::read_to_string(format!("/proc/{}/task/{tid}/comm", self.pid))
            .map(|s| s.trim_end().to_string())
            .unwrap_or_else(|_| "?".to_string())
    }
}

/// The mapped files worth reading whole: ELF objects of a sane size (a
/// program may map big data files too).
const MAX_ELF: u64 = 1 << 30;

/// `path`'s contents if it is an ELF file of at most `MAX_ELF` bytes.
fn read_elf(path: &str) -> Option<Vec<u8>> {
    use std::io::Read;
    let mut f = fs::File::open(path).ok()?;
    let mut magic = [0u8; 4];
    f.read_exact(&mut magic).ok()?;
    if &magic != b"\x7fELF" || f.metadata().ok()?.len() > MAX_ELF {
        return None;
    }
    fs::read(path).ok()
}

fn file_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// Each file mapped in the process, with the address its first page
/// (file offset 0) is mapped at.
fn mapped_objects(maps: &str) -> Vec<(String, u64)> {
    let mut out: Vec<(String, u64)> = Vec::new();
    for line in maps.lines() {
        // start-end perms offset dev inode path
        let mut f = line.split_whitespace();
        let (Some(range), Some(_perms), Some(offset), Some(_dev), Some(_inode)) =
            (f.next(), f.next(), f.next(), f.next(), f.next())
        else {
            continue;
        };
        let path = f.collect::<Vec<_>>().join(" ");
        if !path.starts_with('/') || u64::from_str_radix(offset, 16) != Ok(0) {
            continue;
        }
        let Some(start) = range
            .split('-')
            .next()
            .and_then(|s| u64::from_str_radix(s, 16).ok())
        else {
            continue;
        };
        if !out.iter().any(|(p, _)| *p == path) {
            out.push((path, start));
        }
    }
    out
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}
fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}
fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

const SHT_DYNSYM: u32 = 11;
const PT_LOAD: u32 = 1;
const ET_EXEC: u16 = 2;

/// `name`'s value in the ELF file's dynamic symbol table, relative to
/// the load address of its first segment, and whether the file is a
/// fixed-address executable (the value is then the address itself).
pub fn find_symbol(elf: &[u8], name: &str) -> Option<(u64, bool)> {
    // A 64-bit little-endian ELF file.
    if elf.get(..6)? != b"\x7fELF\x02\x01" {
        return None;
    }
    let exec = u16_at(elf, 0x10)? == ET_EXEC;
    let (phoff, phentsize, phnum) = (
        u64_at(elf, 0x20)? as usize,
        u16_at(elf, 0x36)? as usize,
        u16_at(elf, 0x38)? as usize,
    );
    let (shoff, shentsize, shnum) = (
        u64_at(elf, 0x28)? as usize,
        u16_at(elf, 0x3a)? as usize,
        u16_at(elf, 0x3c)? as usize,
    );
    // The first segment's page: what the mapping at file offset 0 holds.
    let first_vaddr = (0..phnum)
        .map(|i| phoff + i * phentsize)
        .filter(|&ph| u32_at(elf, ph) == Some(PT_LOAD))
        .filter_map(|ph| u64_at(elf, ph + 0x10))
        .min()?
        & !0xfff;
    for i in 0..shnum {
        let sh = shoff + i * shentsize;
        if u32_at(elf, sh + 4)? != SHT_DYNSYM {
            continue;
        }
        let (off, size, link, entsize) = (
            u64_at(elf, sh + 0x18)? as usize,
            u64_at(elf, sh + 0x20)? as usize,
            u32_at(elf, sh + 0x28)? as usize,
            u64_at(elf, sh + 0x38)? as usize,
        );
        let strtab = u64_at(elf, shoff + link * shentsize + 0x18)? as usize;
        let entsize = if entsize == 0 { 24 } else { entsize };
        for s in (off..off + size).step_by(entsize) {
            let name_at = strtab + u32_at(elf, s)? as usize;
            let rest = elf.get(name_at..)?;
            let end = rest.iter().position(|&b| b == 0)?;
            let shndx = u16_at(elf, s + 6)?;
            if &rest[..end] == name.as_bytes() && shndx != 0 {
                let value = u64_at(elf, s + 8)?;
                return Some(if exec {
                    (value, true)
                } else {
                    (value - first_vaddr, false)
                });
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mapped_objects_keep_the_first_page_of_each_file() {
        let maps = "\
55d0a0000000-55d0a0001000 r--p 00000000 08:01 12 /usr/bin/prog
55d0a0001000-55d0a0002000 r-xp 00001000 08:01 12 /usr/bin/prog
7f0000000000-7f0000010000 r--p 00000000 08:01 34 /opt/my lib/liblwkt.so
7f0000010000-7f0000020000 r-xp 00010000 08:01 34 /opt/my lib/liblwkt.so
7f0000030000-7f0000031000 rw-p 00000000 00:00 0 [heap]
";
        assert_eq!(
            mapped_objects(maps),
            vec![
                ("/usr/bin/prog".to_string(), 0x55d0a0000000),
                ("/opt/my lib/liblwkt.so".to_string(), 0x7f0000000000),
            ]
        );
    }

    #[test]
    fn a_file_that_is_not_elf_has_no_symbol() {
        assert_eq!(find_symbol(b"#!/bin/sh\n", SYMBOL), None);
        assert_eq!(find_symbol(b"", SYMBOL), None);
    }

    #[test]
    fn finds_a_symbol_of_this_program() {
        // This test binary is an ELF file with a dynamic symbol table
        // (libc's functions, at least).
        let me = fs::read("/proc/self/exe").unwrap();
        assert!(find_symbol(&me, "no_such_symbol_anywhere").is_none());
    }
}
