//! Integration tests of the probe front end over the script corpus in
//! `tests/corpus/`: one file per case, so adding a case is adding a file.
//! A script with a `.err` file beside it must fail with exactly that
//! rendered diagnostic; every other script must parse. `KSCOPE_BLESS=1`
//! rewrites the `.err` files from what the parser says now.

mod arrays;
mod compile;
mod corpus;
mod robustness;
mod stacks;
