"""Label vocabularies of the supported datasets, in the order models are trained on."""

# CheXNet order (Rajpurkar et al.), used by the reference paper's re-implementations.
NIH_LABELS = (
    "Atelectasis", "Cardiomegaly", "Effusion", "Infiltration", "Mass", "Nodule", "Pneumonia",
    "Pneumothorax", "Consolidation", "Edema", "Emphysema", "Fibrosis", "Pleural_Thickening",
    "Hernia",
)
NIH_NO_FINDING = "No Finding"

# The 14 CheXpert observations, in the order of the CSV columns.
CHEXPERT_LABELS = (
    "No Finding", "Enlarged Cardiomediastinum", "Cardiomegaly", "Lung Opacity", "Lung Lesion",
    "Edema", "Consolidation", "Pneumonia", "Atelectasis", "Pneumothorax", "Pleural Effusion",
    "Pleural Other", "Fracture", "Support Devices",
)
# The five labels of the CheXpert competition, reported separately by evaluation.
CHEXPERT_COMPETITION_LABELS = (
    "Atelectasis", "Cardiomegaly", "Consolidation", "Edema", "Pleural Effusion",
)

# PadChest default subset. The 19 differential diagnoses the reference paper's summary names
# would leave most labels with a handful of positives; the default is instead the 14 ChestX-ray14
# findings mapped onto PadChest's radiological vocabulary (as torchxrayvision does), so results are
# comparable across datasets. Each entry: output label -> PadChest terms that count as positive.
# A PadChest finding matches a term when it equals it or ends with " " + term, so "atelectasis"
# also catches "laminar atelectasis" and "lobar atelectasis" but not "pseudonodule" for "nodule".
PADCHEST_DEFAULT_LABELS = {
    "Atelectasis": ("atelectasis",),
    "Cardiomegaly": ("cardiomegaly",),
    "Effusion": ("pleural effusion", "loculated fissural effusion"),
    "Infiltration": ("infiltrates", "interstitial pattern", "ground glass pattern",
                     "alveolar pattern", "air bronchogram"),
    "Mass": ("mass",),
    "Nodule": ("nodule", "multiple nodules"),
    "Pneumonia": ("pneumonia",),
    "Pneumothorax": ("pneumothorax",),
    "Consolidation": ("consolidation",),
    "Edema": ("pulmonary edema",),
    "Emphysema": ("emphysema",),
    "Fibrosis": ("pulmonary fibrosis", "post radiotherapy changes"),
    "Pleural_Thickening": ("pleural thickening",),
    "Hernia": ("hiatal hernia",),
}
# PadChest `Labels` values that mean the study carries no usable finding labels.
PADCHEST_EXCLUDED = ("exclude", "suboptimal study")
PADCHEST_NORMAL = "normal"
