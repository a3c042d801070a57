//! The LFW dataset as the evaluation sees it: images with identities, and
//! the official View 2 pairs.
//!
//! Read from `labels.csv` (`path,identity`) and `pairs.csv`
//! (`fold,path_a,path_b,same`) in the dataset directory. Images keep the
//! order of `labels.csv` (sorted by person, then file), so "a person's
//! first image" is their `_0001` file, as the open-set protocol needs.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::Result;

/// One image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    /// Path relative to the dataset directory, e.g. `Aaron_Eckhart/Aaron_Eckhart_0001.jpg`.
    pub path: String,
    /// Index into [`Lfw::identities`].
    pub identity: u32,
}

/// One View 2 pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pair {
    /// Fold, 1–10.
    pub fold: u8,
    /// Index into [`Lfw::images`].
    pub a: usize,
    /// Index into [`Lfw::images`].
    pub b: usize,
    /// Same person.
    pub same: bool,
}

/// The dataset.
#[derive(Debug, Clone)]
pub struct Lfw {
    /// The dataset directory.
    pub root: PathBuf,
    /// All images, in `labels.csv` order.
    pub images: Vec<Image>,
    /// Person names; an image's `identity` indexes this.
    pub identities: Vec<String>,
    /// View 2 pairs in file order.
    pub pairs: Vec<Pair>,
}

/// The non-empty lines of a CSV file after its header, split on commas
/// (LFW's names contain no commas or quotes).
fn csv_rows(path: &Path) -> Result<Vec<Vec<String>>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    Ok(text
        .lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.trim().split(',').map(str::to_string).collect())
        .collect())
}

impl Lfw {
    /// Loads `labels.csv` and `pairs.csv` from `root`.
    pub fn load(root: &Path) -> Result<Self> {
        let mut images = Vec::new();
        let mut identities = Vec::new();
        let mut by_name: HashMap<String, u32> = HashMap::new();
        for row in csv_rows(&root.join("labels.csv"))? {
            let [path, name] = row.as_slice() else {
                return Err(format!("labels.csv: bad row {row:?}").into());
            };
            let id = *by_name.entry(name.clone()).or_insert_with(|| {
                identities.push(name.clone());
                (identities.len() - 1) as u32
            });
            images.push(Image {
                path: path.clone(),
                identity: id,
            });
        }
        let index: HashMap<&str, usize> = images
            .iter()
            .enumerate()
            .map(|(i, im)| (im.path.as_str(), i))
            .collect();
        let mut pairs = Vec::new();
        for row in csv_rows(&root.join("pairs.csv"))? {
            let [fold, a, b, same] = row.as_slice() else {
                return Err(format!("pairs.csv: bad row {row:?}").into());
            };
            let find = |p: &str| {
                index
                    .get(p)
                    .copied()
                    .ok_or_else(|| format!("pairs.csv names {p}, absent from labels.csv"))
            };
            pairs.push(Pair {
                fold: fold
                    .parse()
                    .map_err(|e| format!("pairs.csv fold {fold:?}: {e}"))?,
                a: find(a)?,
                b: find(b)?,
                same: same == "1",
            });
        }
        if images.is_empty() || pairs.is_empty() {
            return Err(format!("no images or pairs under {}", root.display()).into());
        }
        Ok(Self {
            root: root.to_path_buf(),
            images,
            identities,
            pairs,
        })
    }

    /// The image indices of each person, in file order.
    pub fn images_by_identity(&self) -> Vec<Vec<usize>> {
        let mut by = vec![Vec::new(); self.identities.len()];
        for (i, im) in self.images.iter().enumerate() {
            by[im.identity as usize].push(i);
        }
        by
    }

    /// Full path of an image.
    pub fn file(&self, image: usize) -> PathBuf {
        self.root.join(&self.images[image].path)
    }
}
