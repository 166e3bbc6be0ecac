//! Link-time fixes for the `neuroscreen-train` binary.
//!
//! 1. Nothing in the binary references a symbol of `libtorch_cuda.so`
//!    directly, so the default `--as-needed` link drops it and CUDA then
//!    silently reports unavailable on a GPU machine. Force it into DT_NEEDED.
//! 2. tch leaves no rpath to torch's `lib/`; add one for local runs.
//!    `LD_LIBRARY_PATH` still wins on another machine (RUNPATH semantics).
//! 3. Compiles `cxx/amp.cpp` (channels-last and bf16 autocast) and
//!    `cxx/fused_adam.cpp` (the fused multi-tensor Adam), which tch does not
//!    bind, against the same libtorch headers.

use std::path::PathBuf;
use std::process::Command;

fn torch_lib_dir() -> Option<PathBuf> {
    if let Ok(dir) = std::env::var("LIBTORCH") {
        return Some(PathBuf::from(dir).join("lib"));
    }
    if std::env::var("LIBTORCH_USE_PYTORCH").is_ok() {
        let python = std::env::var("PYTHON_SYS_EXECUTABLE").unwrap_or_else(|_| "python3".into());
        let out = Command::new(python)
            .args([
                "-c",
                "import os, torch; print(os.path.join(os.path.dirname(torch.__file__), 'lib'))",
            ])
            .output()
            .ok()?;
        if out.status.success() {
            return Some(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()));
        }
    }
    None
}

/// Embeds the committed base anatomy so the binary generates phantoms
/// wherever it is copied (a GPU machine gets only the binary).
fn embed_anatomy() {
    let dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap()).join("anatomy");
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .expect("trainer/anatomy exists")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with("_t1.png"))
        .map(|n| n.trim_end_matches("_t1.png").to_string())
        .collect();
    names.sort();
    let mut code = String::from("pub static BASE_SLICES: &[(&str, &[u8], &[u8])] = &[\n");
    for n in &names {
        code.push_str(&format!(
            "    ({n:?}, include_bytes!({:?}), include_bytes!({:?})),\n",
            dir.join(format!("{n}_t1.png")),
            dir.join(format!("{n}_tissue.png"))
        ));
    }
    code.push_str("];\n");
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("anatomy.rs");
    std::fs::write(out, code).expect("write anatomy.rs");
}

/// The torch install root (holding `include/` and `lib/`) from the lib dir.
fn compile_amp_shim(lib: &std::path::Path) {
    println!("cargo:rerun-if-changed=cxx/amp.cpp");
    println!("cargo:rerun-if-changed=cxx/fused_adam.cpp");
    let root = lib.parent().expect("torch lib/ has a parent");
    let abi = std::env::var("LIBTORCH_CXX11_ABI").unwrap_or_else(|_| "1".into());
    cc::Build::new()
        .cpp(true)
        .file("cxx/amp.cpp")
        .file("cxx/fused_adam.cpp")
        .include(root.join("include"))
        .include(root.join("include/torch/csrc/api/include"))
        .flag("-std=c++17")
        .flag(format!("-D_GLIBCXX_USE_CXX11_ABI={abi}"))
        .flag_if_supported("-Wno-unused-parameter")
        .warnings(false)
        .compile("neuroscreen_amp");
}

fn main() {
    embed_anatomy();
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    println!("cargo:rerun-if-env-changed=LIBTORCH_USE_PYTORCH");
    println!("cargo:rerun-if-env-changed=NEUROSCREEN_NO_CUDA_LINK");
    let Some(lib) = torch_lib_dir() else {
        println!("cargo:warning=torch lib directory not found; set LIBTORCH_USE_PYTORCH=1 (see scripts/env.sh)");
        return;
    };
    compile_amp_shim(&lib);
    println!("cargo:rustc-link-search=native={}", lib.display());
    println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib.display());
    let has_cuda = lib.join("libtorch_cuda.so").exists();
    if has_cuda && std::env::var("NEUROSCREEN_NO_CUDA_LINK").is_err() {
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed,-ltorch_cuda,--as-needed");
    }
}
