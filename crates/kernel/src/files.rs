//! A task's open files (crash's `files`): its file table, and each file's
//! path rebuilt from the dentry tree and the mount tree, as `d_path` does,
//! with offsets from BTF.

use kscope_btf::Btf;

use crate::tasks::Task;
use crate::types::member_offset;
use crate::{Error, KernelRead};

/// The most descriptors read from one table (a hostile `max_fds`).
pub const MAX_FDS: u64 = 1 << 16;

/// The most path components followed (a dentry or mount loop).
const MAX_DEPTH: usize = 256;

/// One open file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct OpenFile {
    /// The descriptor.
    pub fd: u64,
    /// The `struct file` address.
    pub file: u64,
    /// Its dentry.
    pub dentry: u64,
    /// Its inode.
    pub inode: u64,
    /// The inode's type, as crash shows it: `REG`, `DIR`, `CHR`, `BLK`,
    /// `FIFO`, `SOCK`, `LNK`, or `UNKN`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The path from the task's root, or what could be read of it.
    pub path: String,
}

/// A task's files, root and working directory.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TaskFiles {
    /// `fs->root` as a path.
    pub root: String,
    /// `fs->pwd` as a path.
    pub cwd: String,
    /// The open files, by descriptor.
    pub files: Vec<OpenFile>,
}

/// Offsets of the members the reader follows.
struct Offsets {
    task_files: u64,
    task_fs: u64,
    fs_root: u64,
    fs_pwd: u64,
    files_fdt: u64,
    fdt_max_fds: u64,
    fdt_fd: u64,
    file_path: u64,
    file_inode: u64,
    path_mnt: u64,
    path_dentry: u64,
    dentry_parent: u64,
    dentry_name: u64,
    qstr_len: u64,
    qstr_name: u64,
    inode_mode: u64,
    mount_mnt: u64,
    mount_parent: u64,
    mount_mountpoint: u64,
    vfsmount_root: u64,
}

impl Offsets {
    fn from_btf(btf: &Btf<'_>) -> Result<Offsets, Error> {
        let at = |ty: &str, member: &str| member_offset(btf, ty, member);
        Ok(Offsets {
            task_files: at("struct task_struct", "files")?,
            task_fs: at("struct task_struct", "fs")?,
            fs_root: at("struct fs_struct", "root")?,
            fs_pwd: at("struct fs_struct", "pwd")?,
            files_fdt: at("struct files_struct", "fdt")?,
            fdt_max_fds: at("struct fdtable", "max_fds")?,
            fdt_fd: at("struct fdtable", "fd")?,
            file_path: at("struct file", "f_path")?,
            file_inode: at("struct file", "f_inode")?,
            path_mnt: at("struct path", "mnt")?,
            path_dentry: at("struct path", "dentry")?,
            dentry_parent: at("struct dentry", "d_parent")?,
            dentry_name: at("struct dentry", "d_name")?,
            qstr_len: at("struct qstr", "len")?,
            qstr_name: at("struct qstr", "name")?,
            inode_mode: at("struct inode", "i_mode")?,
            mount_mnt: at("struct mount", "mnt")?,
            mount_parent: at("struct mount", "mnt_parent")?,
            mount_mountpoint: at("struct mount", "mnt_mountpoint")?,
            vfsmount_root: at("struct vfsmount", "mnt_root")?,
        })
    }
}

/// Reads `task`'s root, working directory and open files.
///
/// # Errors
///
/// [`Error::Type`] when BTF lacks a member the reader follows, and
/// [`Error::Memory`] when the task's `files`/`fs` or its file table
/// cannot be read. A file whose path cannot be read keeps what was read,
/// with `?` for the rest.
pub fn read_files(memory: &dyn KernelRead, btf: &Btf<'_>, task: &Task) -> Result<TaskFiles, Error> {
    let o = Offsets::from_btf(btf)?;
    let read = |what: &str, address: u64| {
        memory.read_u64(address).map_err(|source| Error::Memory {
            what: what.to_string(),
            source,
        })
    };
    let fs = read("the task's fs", task.address + o.task_fs)?;
    let (root, cwd) = if fs == 0 {
        (String::new(), String::new())
    } else {
        (
            path(memory, &o, fs + o.fs_root),
            path(memory, &o, fs + o.fs_pwd),
        )
    };
    let mut files = Vec::new();
    let table = read("the task's files", task.address + o.task_files)?;
    if table != 0 {
        let fdt = read("files->fdt", table + o.files_fdt)?;
        let max = memory
            .read_u32(fdt + o.fdt_max_fds)
            .map_err(|source| Error::Memory {
                what: "fdt->max_fds".into(),
                source,
            })?;
        let fds = read("fdt->fd", fdt + o.fdt_fd)?;
        for fd in 0..u64::from(max).min(MAX_FDS) {
            let Ok(file) = memory.read_u64(fds + 8 * fd) else {
                break;
            };
            if file == 0 {
                continue;
            }
            let dentry = memory
                .read_u64(file + o.file_path + o.path_dentry)
                .unwrap_or(0);
            let inode = memory.read_u64(file + o.file_inode).unwrap_or(0);
            let mode = memory.read_u16(inode + o.inode_mode).unwrap_or(0);
            files.push(OpenFile {
                fd,
                file,
                dentry,
                inode,
                kind: kind(mode),
                path: path(memory, &o, file + o.file_path),
            });
        }
    }
    Ok(TaskFiles { root, cwd, files })
}

/// The path of the `struct file` at `file`, as [`read_files`] gives it.
///
/// # Errors
///
/// [`Error::Type`] when BTF lacks a member the path walk follows.
pub fn file_path(memory: &dyn KernelRead, btf: &Btf<'_>, file: u64) -> Result<String, Error> {
    let o = Offsets::from_btf(btf)?;
    Ok(path(memory, &o, file + o.file_path))
}

/// The type crash names for an inode's `i_mode`.
fn kind(mode: u16) -> &'static str {
    match mode & 0o170000 {
        0o100000 => "REG",
        0o040000 => "DIR",
        0o020000 => "CHR",
        0o060000 => "BLK",
        0o010000 => "FIFO",
        0o140000 => "SOCK",
        0o120000 => "LNK",
        _ => "UNKN",
    }
}

/// The path of the `struct path` at `at`: names from the dentry up to its
/// mount's root, then on from the mount point in the parent mount, up to
/// the mount that is its own parent.
fn path(memory: &dyn KernelRead, o: &Offsets, at: u64) -> String {
    let read = |address: u64| memory.read_u64(address).ok();
    let (Some(mut vfsmount), Some(mut dentry)) = (read(at + o.path_mnt), read(at + o.path_dentry))
    else {
        return "?".into();
    };
    let mut names: Vec<String> = Vec::new();
    for _ in 0..MAX_DEPTH {
        let Some(mnt_root) = read(vfsmount + o.vfsmount_root) else {
            names.push("?".into());
            break;
        };
        if dentry == mnt_root {
            let mount = vfsmount.wrapping_sub(o.mount_mnt);
            let Some(parent) = read(mount + o.mount_parent) else {
                names.push("?".into());
                break;
            };
            if parent == mount || parent == 0 {
                break;
            }
            let Some(mountpoint) = read(mount + o.mount_mountpoint) else {
                names.push("?".into());
                break;
            };
            dentry = mountpoint;
            vfsmount = parent + o.mount_mnt;
            continue;
        }
        let Some(parent) = read(dentry + o.dentry_parent) else {
            names.push("?".into());
            break;
        };
        names.push(dentry_name(memory, o, dentry));
        if parent == dentry {
            break;
        }
        dentry = parent;
    }
    names.reverse();
    format!("/{}", names.join("/"))
}

/// A dentry's own name.
fn dentry_name(memory: &dyn KernelRead, o: &Offsets, dentry: u64) -> String {
    let name = dentry + o.dentry_name;
    let len = memory.read_u32(name + o.qstr_len).unwrap_or(0).min(255);
    let text = memory
        .read_u64(name + o.qstr_name)
        .ok()
        .and_then(|ptr| memory.read_vec(ptr, len as usize).ok());
    text.map_or_else(|| "?".into(), |t| String::from_utf8_lossy(&t).into_owned())
}

#[cfg(test)]
mod tests {
    use super::kind;

    #[test]
    fn inode_types_as_crash_names_them() {
        assert_eq!(kind(0o100644), "REG");
        assert_eq!(kind(0o020620), "CHR");
        assert_eq!(kind(0o040755), "DIR");
        assert_eq!(kind(0o010600), "FIFO");
        assert_eq!(kind(0), "UNKN");
    }
}
