fn main() {
    std::process::exit(rawkit::cli::main());
}
