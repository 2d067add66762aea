//! `hook!`: one exported hook from one signature.
//!
//! ```text
//! hook! {
//!     /// What the hook does beyond libc.
//!     fn read(fd: c_int, buf: *mut c_void, n: size_t) -> ssize_t
//!         => |real| rw::read("read", (fd, buf, n), Position, |b, n, _| real(fd, b, n))
//! }
//! ```
//!
//! makes, from that one signature:
//!
//! * the exported `#[no_mangle] pub unsafe extern "C" fn read`,
//!   unversioned (a hook exported under a version node of ours would not
//!   interpose: a versioned reference binds only to its version's name or
//!   to an unversioned definition);
//! * a module `read` holding libc's function (`real_slot!`, real.rs:
//!   `read::get()`, `read::present()`; `version = "GLIBC_2.3.2"` after the
//!   signature takes that symbol version of libc's function and exports
//!   the hook as `name@@GLIBC_2.3.2`, the very version name libc gives it,
//!   so that it still interposes; `compat = "GLIBC_2.2.5"` after that adds
//!   the entry point `name@GLIBC_2.2.5` over libc's old version. The nodes
//!   are defined in hooks/glibc_versions.map, linked by build.rs);
//! * the **fast path**: a thread that holds no token loads the slot, tests
//!   its one TLS byte and tail-calls libc's function, with no stack frame
//!   of ours (SPEC S11). The hook is never inlined into another (a
//!   fortified entry point's call of the plain hook): its caller's fast
//!   path stays frameless too;
//! * the **held path** `read::held`, out of line and cold: libc's function
//!   bound to `real`, the held path's entry (`enter_held`), then the body.
//!
//! `fn pread | pread64(...)` makes the same hook under both names, each
//! calling libc's function of its own name.
//!
//! Clauses after the signature, in this order, all optional:
//! `version = "V"`; `compat = "C"`; `before { statements }`, run first by every caller,
//! holder or not (a wait's signal mask made safe for the catch-all: it may
//! shadow arguments); `unless EXPR`, a call that goes to libc even from a
//! holder, without the held path (a command that never blocks).
//!
//! Two other forms:
//! * `=> plain other(args)`: a `_FORTIFY_SOURCE` entry point. A holder
//!   whose call passes the check (`unless` says when it fails) runs the
//!   plain hook `other`; everything else goes to libc's checking function.
//! * `=> always |real| body`: a hook that is not about blocking (the
//!   program's own signal calls): the body runs for every caller.
//!
//! The bodies are unsafe code: they run under the hooked C function's own
//! contract, with the arguments the program passed.

/// Entry of a hook's held path: the thread holds tokens. The catch-all
/// gets a thread it stepped aside in back if it may now (a byte test
/// otherwise); under `LWKT_CHAOS` the thread gives its tokens away and
/// takes them back here, blocking or not, so that code which forgets to
/// re-validate fails in tests.
#[inline(always)]
pub fn enter_held() {
    super::catchall::checkpoint();
    if crate::config::chaos() {
        crate::thread::chaos_cycle();
    }
}

/// See the module's documentation.
macro_rules! hook {
    // `fn a | b (...)`: the same hook under each name (`pread | pread64`),
    // each with its own slot of libc's function of that name.
    (
        $(#[$attr:meta])*
        fn $name:ident | $alias:ident $(| $more:ident)* ($($sig:tt)*) $($rest:tt)*
    ) => {
        hook! { $(#[$attr])* fn $name($($sig)*) $($rest)* }
        hook! { $(#[$attr])* fn $alias $(| $more)* ($($sig)*) $($rest)* }
    };

    // A blocking call: the fast path, then the held path.
    (
        $(#[$attr:meta])*
        fn $name:ident($($arg:ident: $ty:ty),* $(,)?) -> $ret:ty
        $(, version = $ver:literal)?
        $(, compat = $compat:literal)?
        $(, before { $($before:tt)* })?
        $(, unless $pass:expr)?
        => |$real:ident| $held:expr
    ) => {
        // Exported as `name@@V`: the reference of a program linked against
        // libc's `name@@V`, and a `dlvsym(name, V)`, bind to the hook.
        $(
            core::arch::global_asm!(
                concat!(".symver {hook}, ", stringify!($name), "@@@", $ver),
                hook = sym $name,
            );
        )?

        $(#[$attr])*
        ///
        /// # Safety
        ///
        /// libc's contract for this function.
        #[no_mangle]
        #[inline(never)]
        pub unsafe extern "C" fn $name($($arg: $ty),*) -> $ret {
            $($($before)*)?
            let p = $name::ADDR.load(core::sync::atomic::Ordering::Relaxed);
            if p != 0 && !$crate::interpose::release::holding() {
                // SAFETY: `p` is libc's function (or its stand-in), of this
                // signature, called as the program called the hook.
                return unsafe { $name::at(p)($($arg),*) };
            }
            // SAFETY: the same arguments, under the same contract.
            unsafe { $name::held($($arg),*) }
        }

        #[allow(non_snake_case, dead_code)]
        pub(crate) mod $name {
            #[allow(unused_imports)]
            use super::*;

            real_slot!($name: fn($($ty),*) -> $ret $(, version = $ver)?);

            /// The hook's path for a thread that holds tokens (or that
            /// comes before the slot is resolved).
            ///
            /// # Safety
            ///
            /// libc's contract for the hooked function.
            #[cold]
            #[inline(never)]
            pub unsafe extern "C" fn held($($arg: $ty),*) -> $ret {
                let $real = get();
                if !$crate::interpose::release::holding() $(|| $pass)? {
                    // SAFETY: libc's function, as the program called it.
                    return unsafe { $real($($arg),*) };
                }
                $crate::interpose::hook::enter_held();
                // SAFETY: the body runs under the hooked function's own
                // contract, with the program's arguments.
                unsafe { $held }
            }

            // The old version `name@C`, if any.
            hook!(@compat $name($($arg: $ty),*) -> $ret, [$($compat)?], [$($pass)?] => |$real| $held);
        }
    };

    (@compat $name:ident($($arg:ident: $ty:ty),*) -> $ret:ty, [], [$($pass:expr)?] => |$real:ident| $held:expr) => {};

    // The old version `name@C`, the one an unversioned reference binds to:
    // the same held path over libc's `name@C`, exported under that version
    // by a global jump of its own (`.symver` of the Rust function would
    // give a local or hidden symbol, and `.symver` of a function in another
    // codegen unit only a reference); the jump's own name is made local by
    // rustc's version script, the versioned one stays.
    (
        @compat $name:ident($($arg:ident: $ty:ty),*) -> $ret:ty,
        [$compat:literal], [$($pass:expr)?] => |$real:ident| $held:expr
    ) => {
        /// libc's old version of the function, and the hook's entry point
        /// of that version.
        pub(crate) mod compat {
            #[allow(unused_imports)]
            use super::*;

            real_slot!($name: fn($($ty),*) -> $ret, version = $compat);

            /// The hook of `name@C`: the fast path, else the held path's
            /// body over libc's `name@C`.
            ///
            /// # Safety
            ///
            /// libc's contract for that version of the function.
            pub unsafe extern "C" fn entry($($arg: $ty),*) -> $ret {
                let $real = get();
                if !$crate::interpose::release::holding() $(|| $pass)? {
                    // SAFETY: libc's function, as the program called it.
                    return unsafe { $real($($arg),*) };
                }
                $crate::interpose::hook::enter_held();
                // SAFETY: the body runs under the function's own contract,
                // with the program's arguments.
                unsafe { $held }
            }
        }

        core::arch::global_asm!(
            concat!(".pushsection .text.lwkt_compat_", stringify!($name), ",\"ax\",@progbits"),
            concat!(".globl lwkt_compat_", stringify!($name)),
            concat!(".type lwkt_compat_", stringify!($name), ", @function"),
            concat!("lwkt_compat_", stringify!($name), ":"),
            "jmp {entry}",
            concat!(".size lwkt_compat_", stringify!($name), ", . - lwkt_compat_", stringify!($name)),
            ".popsection",
            concat!(
                ".symver lwkt_compat_", stringify!($name), ", ",
                stringify!($name), "@", $compat
            ),
            entry = sym compat::entry,
        );
    };

    // A _FORTIFY_SOURCE entry point: the plain hook once the check passes.
    (
        $(#[$attr:meta])*
        fn $name:ident($($arg:ident: $ty:ty),* $(,)?) -> $ret:ty
        , unless $fails:expr
        => plain $plain:ident($($x:expr),* $(,)?)
    ) => {
        $(#[$attr])*
        ///
        /// # Safety
        ///
        /// libc's contract for this function.
        #[no_mangle]
        #[inline(never)]
        pub unsafe extern "C" fn $name($($arg: $ty),*) -> $ret {
            if !$crate::interpose::release::holding() || $fails {
                // SAFETY: libc's checking function, as the program called
                // it.
                return unsafe { $name::get()($($arg),*) };
            }
            // SAFETY: the check passed: the plain call, under its contract.
            unsafe { $plain($($x),*) }
        }

        #[allow(non_snake_case, dead_code)]
        pub(crate) mod $name {
            #[allow(unused_imports)]
            use super::*;

            real_slot!($name: fn($($ty),*) -> $ret);
        }
    };

    // Not about blocking: the body runs for every caller.
    (
        $(#[$attr:meta])*
        fn $name:ident($($arg:ident: $ty:ty),* $(,)?) -> $ret:ty
        => always |$real:ident| $body:expr
    ) => {
        $(#[$attr])*
        ///
        /// # Safety
        ///
        /// libc's contract for this function.
        #[no_mangle]
        #[inline(never)]
        pub unsafe extern "C" fn $name($($arg: $ty),*) -> $ret {
            let $real = $name::get();
            // SAFETY: the body runs under the hooked function's own
            // contract, with the program's arguments.
            unsafe { $body }
        }

        #[allow(non_snake_case, dead_code)]
        pub(crate) mod $name {
            #[allow(unused_imports)]
            use super::*;

            real_slot!($name: fn($($ty),*) -> $ret);
        }
    };
}
