//! Prints the time the embedded service table takes to decode (run with `/usr/bin/time -v` for its memory).

fn main() {
    let started = std::time::Instant::now();
    let version = awsproto::model_version();
    println!("botocore {version}: table decoded in {:?}", started.elapsed());
}
