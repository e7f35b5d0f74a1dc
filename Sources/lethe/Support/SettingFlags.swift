import LetheCore

extension Setting {
    /// The flag that makes this choice on lethe's command line; library messages name settings
    /// by it once `LetheMain` has told `Setting` so.
    var flag: String {
        switch self {
        case .graph: "--graph"
        case .dtype: "--dtype"
        case .mean: "--mean"
        case .std: "--std"
        case .resize: "--resize"
        case .crop: "--crop"
        case .labels: "--labels"
        case .inPlace: "--in-place"
        case .method: "--method"
        case .passes: "--passes"
        case .positions: "--positions"
        case .rows: "--rows"
        case .layers: "--layers"
        case .samples: "--samples"
        case .alreadyForgotten: "--already-forgotten"
        }
    }
}
