//! Accuracy of a quantized MiniLM against fp32 on the project's corpus
//! (`harness/data/minilm_corpus.txt`, 205 sentences written for quantproof in groups of five on
//! one topic): the cosine of each sentence's embedding to its fp32 embedding, and how well
//! nearest-neighbour retrieval over the corpus agrees with fp32's.
//!
//! Retrieval: every sentence is a query against all the others, ranked by cosine similarity
//! (the embeddings are L2-normalized, so by dot product; ties broken by index). **top-1
//! agreement** is the fraction of queries whose nearest neighbour is the one fp32 finds; **top-5
//! agreement** is the mean overlap of the five nearest neighbours with fp32's five, divided by
//! five (1.0 when every query retrieves fp32's five, in any order).

use super::model::{cosine, Bert, Which};
use super::ptdq::WeightScheme;

/// The corpus, one sentence per non-empty, non-comment line.
pub const CORPUS_TEXT: &str = include_str!("../../data/minilm_corpus.txt");

/// The corpus's sentences.
pub fn corpus() -> Vec<&'static str> {
    CORPUS_TEXT.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).collect()
}

/// A configuration's accuracy against fp32.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Accuracy {
    pub mean_cosine: f64,
    pub min_cosine: f64,
    pub top1_agreement: f64,
    pub top5_agreement: f64,
}

/// The indices of the `k` nearest neighbours of each embedding among the others (cosine,
/// descending; ties by index).
pub fn neighbours(emb: &[Vec<f32>], k: usize) -> Vec<Vec<usize>> {
    let n = emb.len();
    (0..n)
        .map(|i| {
            let mut sims: Vec<(f64, usize)> =
                (0..n).filter(|&j| j != i).map(|j| (cosine(&emb[i], &emb[j]), j)).collect();
            sims.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
            sims.into_iter().take(k).map(|(_, j)| j).collect()
        })
        .collect()
}

/// `got`'s accuracy against `reference` (the fp32 embeddings of the same sentences), with the
/// reference's neighbours computed once by the caller ([`neighbours`] with `k = 5`).
pub fn accuracy(reference: &[Vec<f32>], reference_nn: &[Vec<usize>], got: &[Vec<f32>]) -> Result<Accuracy, String> {
    if reference.len() != got.len() || reference.len() != reference_nn.len() || got.len() < 2 {
        return Err(format!(
            "accuracy needs two or more sentences and one embedding each: {} reference, {} quantized",
            reference.len(),
            got.len()
        ));
    }
    let cos: Vec<f64> = reference.iter().zip(got).map(|(r, g)| cosine(r, g)).collect();
    let nn = neighbours(got, 5);
    let n = got.len() as f64;
    let top1 = nn.iter().zip(reference_nn).filter(|(a, b)| a.first() == b.first()).count() as f64 / n;
    let k = reference_nn.iter().map(Vec::len).max().unwrap_or(1).max(1) as f64;
    let top5 = nn.iter().zip(reference_nn).map(|(a, b)| a.iter().filter(|j| b.contains(j)).count() as f64 / k).sum::<f64>()
        / n;
    Ok(Accuracy {
        mean_cosine: cos.iter().sum::<f64>() / n,
        min_cosine: cos.iter().copied().fold(1.0, f64::min),
        top1_agreement: top1,
        top5_agreement: top5,
    })
}

/// The model's size in bytes: every parameter in f32, except the Linear weights when `weights`
/// quantizes them (`bits / 8` bytes per weight, plus one f32 scale per output channel or per
/// tensor). Embedding tables, biases and LayerNorms stay f32, as in every scheme here.
pub fn model_bytes(bert: &Bert, weights: Option<WeightScheme>) -> usize {
    let norm = |n: &super::model::LayerNorm| n.gamma.len() + n.beta.len();
    let mut f32_params = bert.word.len() + bert.position.len() + bert.token_type.len() + norm(&bert.embedding_norm);
    let mut quantized_bits = 0usize;
    for layer in &bert.layers {
        f32_params += norm(&layer.attention_norm) + norm(&layer.output_norm);
        for w in Which::ALL {
            let lin = layer.linear(w);
            f32_params += lin.bias.len();
            match weights {
                None => f32_params += lin.weight.len(),
                Some(s) => {
                    quantized_bits += lin.weight.len() * s.bits as usize;
                    f32_params += if s.per_channel { lin.outputs } else { 1 };
                }
            }
        }
    }
    4 * f32_params + quantized_bits.div_ceil(8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_corpus_has_two_hundred_distinct_sentences() {
        let c = corpus();
        assert!(c.len() >= 200, "{} sentences", c.len());
        let mut sorted = c.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), c.len(), "duplicate sentences");
    }

    fn unit(v: &[f32]) -> Vec<f32> {
        let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        v.iter().map(|x| x / n).collect()
    }

    #[test]
    fn identical_embeddings_agree_fully_and_a_swap_is_seen() {
        let emb: Vec<Vec<f32>> = (0..12).map(|i| unit(&[1.0, i as f32 * 0.1, (i * i) as f32 * 0.01])).collect();
        let nn = neighbours(&emb, 5);
        let a = accuracy(&emb, &nn, &emb).unwrap();
        assert_eq!((a.top1_agreement, a.top5_agreement), (1.0, 1.0));
        assert!((a.mean_cosine - 1.0).abs() < 1e-6 && (a.min_cosine - 1.0).abs() < 1e-6);
        // Move sentence 0 far away: its own neighbours change, and it leaves the others' lists.
        let mut moved = emb.clone();
        moved[0] = unit(&[-1.0, 0.0, 5.0]);
        let b = accuracy(&emb, &nn, &moved).unwrap();
        assert!(b.top1_agreement < 1.0 && b.top5_agreement < 1.0 && b.min_cosine < 0.5);
        assert!(accuracy(&emb, &nn, &moved[..3]).is_err());
    }
}
