//! Compiles ordo's .proto files once, for the server and the client alike.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    if std::env::var_os("PROTOC").is_none() {
        // A vendored protoc, so building ordo needs no system protobuf compiler.
        // SAFETY: build scripts are single-threaded; nothing reads the
        // environment concurrently.
        #[allow(unsafe_code)]
        unsafe {
            std::env::set_var("PROTOC", protoc_bin_vendored::protoc_bin_path()?)
        };
    }
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    let mut protos: Vec<PathBuf> = Vec::new();
    for package in ["proto/ordo/v1", "proto/ordo/cluster/v1"] {
        for entry in std::fs::read_dir(package)? {
            protos.push(entry?.path());
        }
    }
    tonic_prost_build::configure()
        .file_descriptor_set_path(out_dir.join("ordo_descriptor.bin"))
        .compile_protos(&protos, &[PathBuf::from("proto")])?;
    Ok(())
}
